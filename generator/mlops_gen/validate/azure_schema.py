"""Microsoft's Azure Pipelines schema as vendored by check-jsonschema, read the way Azure reads YAML.

Azure Pipelines reads every YAML scalar as a string and converts it where a boolean or a number
is needed, matches task names, input names and enum values case-insensitively (the schema says
so with its own `ignoreCase` annotations, which generic validators ignore), and knows input
aliases. The vendored schema, taken literally, rejects most real pipelines for those reasons. So:

- `type` accepts any scalar for "string", and "true"/"false" strings for "boolean", digit strings
  for numbers (what Azure itself converts);
- `pattern` and `enum` honour `ignoreCase` and accept values made of ${{ }}, $( ) and $[ ]
  expressions, which are only known at compile or run time;
- patterns use Python's regex engine (check-jsonschema's `python` regex variant);
- the 1,000-branch `task` definition is replaced by a generic step shape; each task step is then
  checked against its own branch (see azure_tasks.py), which gives precise messages;
- the root also accepts variables-, steps-, jobs- and stages- templates;
- trigger/pr path filters accept any path (the vendored schema applies the branch-name pattern).
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from check_jsonschema.regex_variants import RegexImplementation, RegexVariantName
from jsonschema import Draft7Validator, ValidationError, validators

from mlops_gen.validate.schemas import vendored_schema

_EXPR = re.compile(r"\$\{\{.*?\}\}|\$\(.*?\)|\$\[.*?\]", re.DOTALL)
_TRUE_FALSE = {"true", "false"}
_REGEX = RegexImplementation(RegexVariantName.python)


def is_dynamic(value: Any) -> bool:
    """A value that contains a template expression, macro or runtime expression."""
    return isinstance(value, str) and _EXPR.search(value) is not None


def as_azure_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _is_string(_checker: Any, value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _is_boolean(_checker: Any, value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, str) and (value.lower() in _TRUE_FALSE or is_dynamic(value)))


def _is_integer(_checker: Any, value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and (value.strip().lstrip("-").isdigit() or is_dynamic(value))


def _is_number(checker: Any, value: Any) -> bool:
    if _is_integer(checker, value) or (isinstance(value, float)):
        return True
    if isinstance(value, str):
        try:
            float(value)
            return True
        except ValueError:
            return False
    return False


def _pattern(validator: Any, pattern: str, instance: Any, schema: dict) -> Any:
    if not isinstance(instance, (str, int, float, bool)) or is_dynamic(instance):
        return
    flags = re.IGNORECASE if schema.get("ignoreCase") in ("value", "all") else 0
    text = as_azure_string(instance)
    if not re.search(pattern, text, flags):
        yield ValidationError(f"{text!r} does not match {pattern!r}")


def _enum(validator: Any, enums: list, instance: Any, schema: dict) -> Any:
    if is_dynamic(instance):
        return
    if isinstance(instance, (str, int, float, bool)):
        text = as_azure_string(instance)
        if schema.get("ignoreCase") in ("value", "all"):
            if text.lower() in {as_azure_string(e).lower() for e in enums}:
                return
        elif text in {as_azure_string(e) for e in enums}:
            return
    elif instance in enums:
        return
    yield ValidationError(f"{instance!r} is not one of {enums!r}")


AzureValidator = validators.extend(
    Draft7Validator,
    validators={
        "pattern": _pattern,
        "enum": _enum,
        "patternProperties": _REGEX.patternProperties_keyword,
    },
    type_checker=Draft7Validator.TYPE_CHECKER.redefine_many(
        {"string": _is_string, "boolean": _is_boolean, "integer": _is_integer, "number": _is_number}
    ),
)


@lru_cache(maxsize=1)
def adapted_schema() -> dict[str, Any]:
    schema = copy.copy(vendored_schema("azure-pipelines"))
    definitions = dict(schema["definitions"])
    task = definitions["task"]
    properties = {k: v for k, v in task["properties"].items() if k != "task"}
    properties["task"] = {"type": "string", "description": "Task reference: Name@MajorVersion"}
    properties["target"] = {"$ref": "#/definitions/stepTarget"}
    properties["inputs"] = {"type": "object", "description": "Task-specific inputs"}
    properties["env"] = {"$ref": "#/definitions/mappingOfStringString"}
    definitions["task"] = {"type": "object", "properties": properties, "additionalProperties": False,
                           "required": ["task"]}
    pipeline = dict(definitions["pipeline"])
    pipeline["anyOf"] = [*pipeline["anyOf"], *({"$ref": f"#/definitions/{name}"} for name in (
        "variablesTemplate", "stepsTemplate", "jobsTemplate", "stagesTemplate"))]
    definitions["pipeline"] = pipeline
    # Path filters share the branch-name pattern in the vendored schema, which forbids the
    # documented `paths: include: [docs/]` form; Azure takes any path prefix or wildcard there.
    for name in ("trigger", "pr"):
        definitions[name] = _with_string_path_filters(definitions[name])
    schema["definitions"] = definitions
    return schema


def _with_string_path_filters(definition: dict[str, Any]) -> dict[str, Any]:
    definition = copy.deepcopy(definition)
    for branch in definition.get("anyOf", []):
        paths = branch.get("properties", {}).get("paths")
        if paths is not None:
            paths["$ref"] = "#/definitions/includeExcludeStringFilters"
    return definition


@lru_cache(maxsize=1)
def validator() -> Any:
    return AzureValidator(adapted_schema())


@lru_cache(maxsize=1)
def task_branches() -> dict[str, dict[str, Any]]:
    """lower-case `Name@Major` -> that task's branch of the vendored schema (newest first wins)."""
    out: dict[str, dict[str, Any]] = {}
    for branch in vendored_schema("azure-pipelines")["definitions"]["task"]["anyOf"]:
        pattern = branch.get("properties", {}).get("task", {}).get("pattern", "")
        name = pattern.strip("^$")
        if name and name.lower() not in out:
            out[name.lower()] = branch
    return out
