"""Compile-time processing of an Azure Pipelines file: `${{ }}` template expressions
(`${{ if }}` / `${{ elseif }}` / `${{ else }}` / `${{ each }}` insertions, `${{ variables.x }}`,
`${{ parameters.x }}`, any function of mlops_gen.azure_expressions) and `template:` references to local files
(steps, jobs, stages, variables, `extends`), with their `parameters`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from mlops_gen.azure_expressions import CIDict, Evaluator, ExprError, to_str, truthy

from .errors import CIUsageError

_EXPR = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
_DIRECTIVE = re.compile(r"^\$\{\{\s*(if|elseif|else|each|insert)\b(.*?)\}\}$", re.DOTALL)
_EACH = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.+)$", re.DOTALL)


class _Loader(yaml.SafeLoader):
    """YAML as Azure Pipelines reads it: only true/false are booleans (`on`, `yes`, `no` stay
    strings, so `on: failure:` in a runOnce strategy keeps its key)."""


_Loader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
for _ch in "tTfF":
    _Loader.yaml_implicit_resolvers.setdefault(_ch, []).insert(
        0, ("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")))


def load_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_Loader)
    except FileNotFoundError as exc:
        raise CIUsageError(f"template {path} not found") from exc
    except yaml.YAMLError as exc:
        raise CIUsageError(f"{path.name}: not valid YAML: {exc}") from exc


def declared_parameters(spec: Any, supplied: dict, where: str, strict_types: bool = True) -> dict:
    """Parameter values: defaults of the `parameters:` declaration, overridden by `supplied`."""
    out: dict = {}
    decl = spec.get("parameters") if isinstance(spec, dict) else None
    if isinstance(decl, dict):  # old map form: name: default
        out.update(decl)
    elif isinstance(decl, list):
        for item in decl:
            if not isinstance(item, dict) or "name" not in item:
                raise CIUsageError(f"{where}: parameters entries need a name")
            name = str(item["name"])
            if name in supplied:
                value = _typed(supplied[name], item.get("type", "string"), f"{where}: parameter {name}")
                allowed = item.get("values")
                if allowed and value not in allowed and to_str(value) not in [to_str(a) for a in allowed]:
                    raise CIUsageError(f"{where}: parameter {name}={value!r} is not one of {allowed}")
                out[name] = value
            elif "default" in item:
                out[name] = item["default"]
            else:
                raise CIUsageError(f"{where}: parameter {name!r} has no default and no value was given")
    for k, v in supplied.items():
        out.setdefault(k, v)
    return out


def _typed(value: Any, kind: str, where: str) -> Any:
    if not isinstance(value, str):
        return value
    kind = str(kind).lower()
    if kind == "boolean":
        if value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise CIUsageError(f"{where}: {value!r} is not a boolean")
    if kind == "number":
        try:
            return float(value) if "." in value else int(value)
        except ValueError as exc:
            raise CIUsageError(f"{where}: {value!r} is not a number") from exc
    if kind in ("object", "step", "steplist", "job", "joblist", "stage", "stagelist", "deployment",
                "deploymentlist"):
        return yaml.safe_load(value)
    return value


class Expander:
    def __init__(self, variables: CIDict, overrides: dict[str, str]):
        self.base_variables = variables
        self.overrides = overrides  # --var: wins over the file's variables, at compile time too

    # -- entry points ----------------------------------------------------------------------
    def pipeline(self, path: Path, spec: dict, parameters: dict) -> dict:
        params = declared_parameters(spec, parameters, path.name)
        scope = {"parameters": params, "variables": self.base_variables.copy()}
        body = {k: v for k, v in spec.items() if k != "parameters"}
        extends = body.pop("extends", None)
        result = self.node(body, scope, path.parent, None)
        if extends is not None:
            if not isinstance(extends, dict) or "template" not in extends:
                raise CIUsageError("extends: needs a template")
            tpl_path, tpl = self._load(str(extends["template"]), path.parent)
            supplied = self.node(extends.get("parameters") or {}, scope, path.parent, None)
            tparams = declared_parameters(tpl, supplied, tpl_path.name)
            tscope = {"parameters": tparams, "variables": scope["variables"]}
            expanded = self.node({k: v for k, v in tpl.items() if k != "parameters"}, tscope, tpl_path.parent, None)
            for k, v in expanded.items():
                result.setdefault(k, v) if k != "variables" else result.update(
                    variables=_merge_vars(result.get("variables"), v))
        return result

    # -- tree walk -------------------------------------------------------------------------
    def node(self, value: Any, scope: dict, base: Path, key: str | None) -> Any:
        if isinstance(value, str):
            return self.string(value, scope)
        if isinstance(value, list):
            return self.seq(value, scope, base, key)
        if isinstance(value, dict):
            return self.mapping(value, scope, base)
        return value

    def evaluate(self, expr: str, scope: dict) -> Any:
        try:
            return Evaluator(scope).evaluate(expr.strip())
        except ExprError as exc:
            raise CIUsageError(f"template expression ${{{{ {expr.strip()} }}}}: {exc}") from exc

    def string(self, text: str, scope: dict) -> Any:
        whole = _EXPR.fullmatch(text.strip())
        if whole:
            return self.evaluate(whole.group(1), scope)
        return _EXPR.sub(lambda m: to_str(self.evaluate(m.group(1), scope)), text)

    def _directive(self, key: Any):
        if isinstance(key, str):
            m = _DIRECTIVE.match(key.strip())
            if m:
                return m.group(1), m.group(2).strip()
        return None

    def _branches(self, items: list[tuple[Any, Any]], scope: dict):
        """Yield (value, extra_scope) of the directive entries that apply, in order."""
        chain_open, chain_taken = False, False
        for key, value in items:
            d = self._directive(key)
            if d is None:
                chain_open = False
                yield ("plain", key, value, None)
                continue
            kind, arg = d
            if kind == "if":
                chain_open, chain_taken = True, truthy(self.evaluate(arg, scope))
                if chain_taken:
                    yield ("insert", key, value, None)
            elif kind in ("elseif", "else"):
                if not chain_open:
                    raise CIUsageError(f"{key!r} without a preceding ${{{{ if }}}}")
                if not chain_taken and (kind == "else" or truthy(self.evaluate(arg, scope))):
                    chain_taken = True
                    yield ("insert", key, value, None)
                if kind == "else":
                    chain_open = False
            elif kind == "each":
                chain_open = False
                m = _EACH.match(arg)
                if not m:
                    raise CIUsageError(f"{key!r}: expected ${{{{ each NAME in EXPRESSION }}}}")
                collection = self.evaluate(m.group(2), scope)
                if isinstance(collection, dict):
                    collection = [{"key": k, "value": v} for k, v in collection.items()]
                for item in collection or []:
                    yield ("insert", key, value, {m.group(1): item})
            else:  # insert
                chain_open = False
                yield ("insert", key, value, None)

    def mapping(self, data: dict, scope: dict, base: Path) -> dict:
        out: dict = {}
        items = list(data.items())
        if "variables" in data:  # variables are in scope for the rest of this mapping
            scope = {**scope, "variables": scope["variables"].copy()}
            expanded_vars = self.node(data["variables"], scope, base, "variables")
            scope["variables"].update(compile_time_values(expanded_vars))
            scope["variables"].update(self.overrides)
        for kind, key, value, extra in self._branches(items, scope):
            sub = {**scope, **extra} if extra else scope
            if kind == "plain":
                k = self.string(key, sub) if isinstance(key, str) else key
                out[to_str(k) if not isinstance(k, (int, float, bool)) else k] = (
                    expanded_vars if key == "variables" else self.node(value, sub, base, str(k)))
            else:
                inserted = self.node(value, sub, base, None)
                if inserted in (None, "", [], {}):  # an empty parameter inserts nothing (e.g. `matrix: []`)
                    continue
                if not isinstance(inserted, dict):
                    raise CIUsageError(f"{key!r} inside a mapping must insert a mapping")
                out.update(inserted)
        return out

    def seq(self, data: list, scope: dict, base: Path, key: str | None) -> list:
        out: list = []
        entries = []
        for item in data:
            if isinstance(item, dict) and len(item) == 1 and self._directive(next(iter(item))):
                entries.append(next(iter(item.items())))
            else:
                entries.append((_PLAIN, item))
        for kind, k, value, extra in self._branches(entries, scope):
            sub = {**scope, **extra} if extra else scope
            if kind == "plain":
                value = value if k is _PLAIN else {k: value}
                if isinstance(value, dict) and "template" in value and key in ("steps", "jobs", "stages", "variables"):
                    out.extend(self.reference(value, sub, base, key))
                else:
                    out.append(self.node(value, sub, base, None))
            else:
                if isinstance(value, list):
                    out.extend(self.seq(value, sub, base, key))
                elif value is not None:
                    expanded = self.seq([value], sub, base, key)
                    out.extend(expanded)
        return out

    def reference(self, ref: dict, scope: dict, base: Path, key: str) -> list:
        tpl_path, tpl = self._load(str(self.string(ref["template"], scope)), base)
        supplied = self.node(ref.get("parameters") or {}, scope, base, None)
        params = declared_parameters(tpl, supplied, tpl_path.name)
        tscope = {"parameters": params, "variables": scope["variables"]}
        if key not in tpl:
            raise CIUsageError(f"template {tpl_path.name} has no {key}: section")
        return self.seq(tpl[key] or [], tscope, tpl_path.parent, key)

    def _load(self, ref: str, base: Path) -> tuple[Path, dict]:
        if "@" in ref:
            raise CIUsageError(f"template {ref}: templates from other repositories cannot be run locally")
        path = (base / ref.lstrip("/")) if not ref.startswith("/") else Path(ref)
        data = load_yaml(path)
        if not isinstance(data, dict):
            raise CIUsageError(f"template {path.name}: expected a mapping")
        return path, data


_PLAIN = object()


def compile_time_values(variables: Any) -> dict:
    """name → value of the literal variables of a `variables:` node (map or list form)."""
    out: dict = {}
    if isinstance(variables, dict):
        out.update({str(k): to_str(v) for k, v in variables.items() if not isinstance(v, (dict, list))})
    elif isinstance(variables, list):
        for item in variables:
            if isinstance(item, dict) and "name" in item:
                out[str(item["name"])] = to_str(item.get("value"))
    return out


def _merge_vars(a: Any, b: Any) -> Any:
    def as_list(v):
        if v is None:
            return []
        if isinstance(v, dict):
            return [{"name": k, "value": x} for k, x in v.items()]
        return list(v)
    return as_list(b) + as_list(a)
