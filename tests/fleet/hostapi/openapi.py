"""Check requests and responses against a host's published API description (OpenAPI 3.0 or
Swagger 2.0), as vendored in specs/: the operation must exist, path and query parameters must be
declared and of the declared type, required ones present, and a JSON body must match its schema.
Schemas are checked by jsonschema (draft 4, the dialect both OpenAPI versions build on)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from jsonschema import Draft4Validator

SPECS = Path(__file__).parent / "specs"


class SpecViolation(Exception):
    """The request (or the fake's response) is not allowed by the host's API description."""


@dataclass
class Operation:
    method: str
    template: str
    spec: dict
    params: dict[str, str]       # path parameters, decoded


def _nullable(node: object) -> object:
    """OpenAPI 3.0's `nullable: true` in JSON Schema terms."""
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    if not isinstance(node, dict):
        return node
    node = {k: _nullable(v) for k, v in node.items()}
    if node.pop("nullable", False) is True:
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
            if "enum" in node:
                node["enum"] = [*node["enum"], None]
        else:
            node = {"anyOf": [node, {"type": "null"}]}
    return node


class Spec:
    def __init__(self, host: str) -> None:
        doc = json.loads((SPECS / f"{host}.json").read_text())
        self.swagger2 = "swagger" in doc
        self.doc = doc if self.swagger2 else _nullable(doc)
        self.base = doc.get("basePath", "") if self.swagger2 else urlparse(doc["servers"][0]["url"]).path
        self.base = self.base.rstrip("/")
        self.routes = []
        for template in doc["paths"]:
            pattern = re.sub(r"\\\{[^}]+\\\}", "([^/]+)", re.escape(template))
            names = re.findall(r"\{([^}]+)\}", template)
            self.routes.append((re.compile(f"^{pattern}$"), template, names))
        self.routes.sort(key=lambda r: len(r[2]))    # literal segments win over parameters

    # ---- schemas ------------------------------------------------------------------------------

    def _pointer(self, ref: str) -> dict:
        node = self.doc
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    def validate(self, schema: dict, instance: object, what: str) -> None:
        root = {**self.doc, "x-checked": schema, "$ref": "#/x-checked"}
        errors = sorted(Draft4Validator(root).iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            error = errors[0]
            where = "/".join(map(str, error.absolute_path)) or "(root)"
            raise SpecViolation(f"{what}: {where}: {error.message[:300]}")

    # ---- requests -----------------------------------------------------------------------------

    def match(self, method: str, path: str) -> Operation:
        if not path.startswith(self.base + "/"):
            raise SpecViolation(f"{path} is outside the API's base path {self.base}")
        relative = path[len(self.base):]
        for regex, template, names in self.routes:
            found = regex.match(relative)
            if found and method.lower() in self.doc["paths"][template]:
                params = {n: unquote(v) for n, v in zip(names, found.groups(), strict=True)}
                return Operation(method.lower(), template, self.doc["paths"][template][method.lower()], params)
        raise SpecViolation(f"no operation {method} {relative} in the API description")

    def parameters(self, op: Operation) -> list[dict]:
        shared = self.doc["paths"][op.template].get("parameters", [])
        merged = {}
        for param in [*shared, *op.spec.get("parameters", [])]:
            param = self._pointer(param["$ref"]) if "$ref" in param else param
            merged[(param["in"], param["name"])] = param
        return list(merged.values())

    def _param_schema(self, param: dict) -> dict:
        if "schema" in param and not self.swagger2:
            return param["schema"]
        return {k: v for k, v in param.items() if k in ("type", "format", "enum", "items", "minimum", "maximum",
                                                         "default")}

    def _coerce(self, value: str, schema: dict) -> object:
        schema = self._pointer(schema["$ref"]) if "$ref" in schema else schema
        kind = schema.get("type")
        try:
            if kind == "integer":
                return int(value)
            if kind == "number":
                return float(value)
        except ValueError:
            return value
        if kind == "boolean":
            return {"true": True, "false": False}.get(value, value)
        if kind == "array":
            return [self._coerce(v, schema.get("items", {})) for v in value.split(",")]
        return value

    def check_request(self, method: str, path: str, query: dict[str, list[str]], content_type: str,
                      body: bytes) -> Operation:
        op = self.match(method, path)
        what = f"{method} {op.template}"
        declared = {(p["in"], p["name"]): p for p in self.parameters(op)}
        for name, value in op.params.items():
            param = declared.get(("path", name))
            if param is None:
                raise SpecViolation(f"{what}: path parameter {name} is not declared")
            self.validate(self._param_schema(param), self._coerce(value, self._param_schema(param)),
                          f"{what}: path parameter {name}")
        for name, values in query.items():
            param = declared.get(("query", name))
            if param is None:
                raise SpecViolation(f"{what}: query parameter {name!r} is not declared")
            for value in values:
                self.validate(self._param_schema(param), self._coerce(value, self._param_schema(param)),
                              f"{what}: query parameter {name}")
        for (where, name), param in declared.items():
            if where == "query" and param.get("required") and name not in query:
                raise SpecViolation(f"{what}: required query parameter {name!r} missing")
        self._check_body(op, what, declared, content_type, body)
        return op

    def _check_body(self, op: Operation, what: str, declared: dict, content_type: str, body: bytes) -> None:
        if self.swagger2:
            param = next((p for (where, _), p in declared.items() if where == "body"), None)
            schema, required = (param["schema"], param.get("required", False)) if param else (None, False)
            media = op.spec.get("consumes", self.doc.get("consumes", ["application/json"]))
        else:
            request_body = op.spec.get("requestBody")
            if request_body and "$ref" in request_body:
                request_body = self._pointer(request_body["$ref"])
            content = (request_body or {}).get("content", {})
            media = list(content)
            schema = content.get("application/json", {}).get("schema") if content else None
            required = bool(request_body and request_body.get("required"))
        if not body:
            if required:
                raise SpecViolation(f"{what}: the request body is required")
            return
        if schema is None:
            raise SpecViolation(f"{what}: this operation takes no request body")
        if content_type.split(";")[0].strip() not in media:
            raise SpecViolation(f"{what}: content type {content_type!r} not accepted ({', '.join(media)})")
        try:
            instance = json.loads(body)
        except ValueError as error:
            raise SpecViolation(f"{what}: body is not JSON: {error}") from None
        self.validate(schema, instance, f"{what}: body")

    # ---- responses ----------------------------------------------------------------------------

    def response_schema(self, op: Operation, status: int) -> dict | None:
        responses = op.spec.get("responses", {})
        response = responses.get(str(status), responses.get("default"))   # {} once its prose is dropped
        if response is None:
            raise SpecViolation(f"{op.method.upper()} {op.template}: status {status} is not a documented answer")
        response = self._pointer(response["$ref"]) if "$ref" in response else response
        if self.swagger2:
            return response.get("schema")
        return response.get("content", {}).get("application/json", {}).get("schema")

    def example(self, op: Operation, status: int, name: str | None = None) -> object:
        """The host's own example answer (OpenAPI 3 documents carry them), deep-copied: the one
        called `name`, else the first."""
        response = op.spec["responses"][str(status)]
        response = self._pointer(response["$ref"]) if "$ref" in response else response
        examples = response["content"]["application/json"]["examples"]
        first = examples[name] if name else next(iter(examples.values()))
        first = self._pointer(first["$ref"]) if "$ref" in first else first
        return copy.deepcopy(first["value"])

    def check_response(self, op: Operation, status: int, data: object) -> None:
        schema = self.response_schema(op, status)
        if schema is not None and data is not None:
            self.validate(schema, data, f"{op.method.upper()} {op.template}: response {status}")
