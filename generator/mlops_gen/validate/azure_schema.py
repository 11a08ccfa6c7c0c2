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
  checked against Microsoft's own task definitions (azure_tasks.py), which gives precise messages;
- the root also accepts variables-, steps-, jobs- and stages- templates;
- trigger/pr path filters accept any path (the vendored schema applies the branch-name pattern);
- a value that is wholly a template expression (`jobs: ${{ parameters.jobs }}`, a list item
  `- ${{ parameters.steps }}`) is unknown until expansion: no keyword applies to it; a mapping
  holding DYNAMIC (keys only known after expansion) skips `required`/`minProperties` and its
  unknown-key check ignores DYNAMIC; an empty (null) value is accepted where a list is (Azure reads
  it as no items; azure.py warns);
- `- job:`/`- stage:` with no name (Azure names them itself), parameter defaults of null;
- timeoutInMinutes/cancelTimeoutInMinutes are integers (or expressions), which Azure enforces.
"""

from __future__ import annotations

import copy
import re
from functools import lru_cache
from typing import Any

from jsonschema import Draft7Validator, ValidationError, validators

from mlops_gen.validate.precomputed import AZURE_SCHEMA
from mlops_gen.validate.schemas import own_schema, vendored_schema

# Key marking where keys only known at compile time are inserted (`${{ insert }}: ${{ x }}`, a
# computed key `${{ x.name }}: ...`); see azure.expand().
DYNAMIC = "__compile_time_keys__"
_EXPR = re.compile(r"\$\{\{.*?\}\}|\$\(.*?\)|\$\[.*?\]", re.DOTALL)
_TRUE_FALSE = {"true", "false"}


def is_dynamic(value: Any) -> bool:
    """A value that contains a template expression, macro or runtime expression."""
    return isinstance(value, str) and _EXPR.search(value) is not None


def is_template(value: Any) -> bool:
    """A value that is wholly one template expression: unknown until the template is expanded."""
    if not isinstance(value, str):
        return False
    text = value.strip()
    return text.startswith("${{") and text.endswith("}}")


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


def _is_array(_checker: Any, value: Any) -> bool:
    # An empty (null) value where a list is expected is read as no items (azure.py warns about it).
    return isinstance(value, list) or value is None


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


def _pattern_properties(validator: Any, pattern_properties: dict[str, Any], instance: Any, schema: dict) -> Any:
    """check-jsonschema's `python` regex variant of patternProperties (Python's `re`, not ECMA-262),
    kept here so that validating does not import check-jsonschema's CLI."""
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in pattern_properties.items():
        for k, v in instance.items():
            if re.search(pattern, k):
                yield from validator.descend(v, subschema, path=k, schema_path=pattern)


def _additional_properties(validator: Any, value: Any, instance: Any, schema: dict) -> Any:
    if isinstance(instance, dict) and DYNAMIC in instance:
        instance = {k: v for k, v in instance.items() if k != DYNAMIC}
    yield from Draft7Validator.VALIDATORS["additionalProperties"](validator, value, instance, schema)


def _unless_dynamic_keys(keyword: str) -> Any:
    def check(validator: Any, value: Any, instance: Any, schema: dict) -> Any:
        if isinstance(instance, dict) and DYNAMIC in instance:
            return
        yield from Draft7Validator.VALIDATORS[keyword](validator, value, instance, schema)
    return check


def _one_of(validator: Any, value: Any, instance: Any, schema: dict) -> Any:
    for error in Draft7Validator.VALIDATORS["oneOf"](validator, value, instance, schema):
        if not error.context and isinstance(instance, dict) and DYNAMIC in instance:
            continue  # "more than one branch": the unknown keys may well decide
        yield error


_ARRAY_KEYWORDS = {"items", "additionalItems", "contains", "minItems", "maxItems", "uniqueItems"}


def _unknown_until_expansion(keyword: str, check: Any) -> Any:
    def wrapped(validator: Any, value: Any, instance: Any, schema: dict) -> Any:
        if is_template(instance) or instance is None and keyword in _ARRAY_KEYWORDS:
            return
        yield from check(validator, value, instance, schema) or ()
    return wrapped


_KEYWORDS = {
    **Draft7Validator.VALIDATORS,
    "pattern": _pattern,
    "enum": _enum,
    "patternProperties": _pattern_properties,
    "additionalProperties": _additional_properties,
    "required": _unless_dynamic_keys("required"),
    "minProperties": _unless_dynamic_keys("minProperties"),
    "oneOf": _one_of,
}
AzureValidator = validators.extend(
    Draft7Validator,
    validators={k: v if k == "$ref" else _unknown_until_expansion(k, v) for k, v in _KEYWORDS.items()},
    type_checker=Draft7Validator.TYPE_CHECKER.redefine_many(
        {"string": _is_string, "boolean": _is_boolean, "integer": _is_integer, "number": _is_number,
         "array": _is_array}
    ),
)


def adapted_schema() -> dict[str, Any]:
    """build_adapted_schema()'s result as shipped in data/ (see precomputed.py)."""
    return own_schema(AZURE_SCHEMA)


def build_adapted_schema() -> dict[str, Any]:
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
    # `default: null` is a valid parameter default (an object parameter that is empty by default).
    definitions["any"] = {"anyOf": [*definitions["any"]["anyOf"], {"type": "null"}]}
    # `- job:` / `- stage:` with no name: Azure names them itself (Job, Job1, ...; __default).
    for name, key in (("job", "job"), ("stage", "stage")):
        definitions[name] = _with_nullable(definitions[name], key)
    # Azure converts timeouts to integers and rejects anything else ("3h"); the vendored schema
    # only asks for a string.
    definitions["timeoutMinutes"] = {"type": "integer", "x-message": "must be a whole number of minutes"}
    definitions = _with_integer_timeouts(definitions)
    schema["definitions"] = definitions
    return schema


def _with_nullable(definition: dict[str, Any], key: str) -> dict[str, Any]:
    definition = copy.deepcopy(definition)
    for branch in definition.get("anyOf", []):
        prop = branch.get("properties", {}).get(key)
        if prop is not None:
            branch["properties"][key] = {"anyOf": [prop, {"type": "null"}]}
    return definition


def _with_integer_timeouts(node: Any) -> Any:
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in ("timeoutInMinutes", "cancelTimeoutInMinutes") and isinstance(v, dict) and "$ref" in v:
                out[k] = {**v, "$ref": "#/definitions/timeoutMinutes"}
            else:
                out[k] = _with_integer_timeouts(v)
        return out
    if isinstance(node, list):
        return [_with_integer_timeouts(v) for v in node]
    return node


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
