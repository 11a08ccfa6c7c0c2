"""Check requests against botocore's service model, including what botocore's own validation skips.

botocore validates types and required members before sending, but not enums, patterns or
min/max constraints (AWS checks those server-side, and emulators mostly do not). `check()` walks
the operation's input shape and reports every such violation; `RequestChecker` hooks it into
botocore sessions so that every request a piece of code makes is checked and recorded.

Values of a SageMaker Pipeline definition may be pipeline expressions ({"Get": ...},
{"Std:Join": ...}, {"Std:JsonGet": ...}) resolved at run time: `expressions=True` accepts them
where a scalar is expected.
"""

from __future__ import annotations

import datetime
import functools

import botocore.session

try:  # AWS patterns use \p{...} classes, which only the `regex` module (a cfn-lint dependency) knows
    import regex as _re
except ImportError:  # pragma: no cover
    import re as _re

EXPRESSION_KEYS = {"Get", "Std:Join", "Std:JsonGet"}


class RequestError(AssertionError):
    pass


# Java writes characters beyond U+FFFF as UTF-16 surrogate pairs; Python matches code points.
_SURROGATE_RANGE = (r"\uD800\uDC00-\uDBFF\uDFFF", r"\U00010000-\U0010FFFF")


@functools.cache
def _compile(pattern: str):
    return _re.compile(pattern.replace(*_SURROGATE_RANGE), _re.DOTALL)


def _is_expression(value) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)) in EXPRESSION_KEYS


def check(shape, value, path: str = "", *, ignore_required=(), expressions: bool = False) -> list[str]:
    """Violations of `value` against botocore `shape`, one message per problem."""
    errors: list[str] = []
    where = path or "(request)"
    if expressions and _is_expression(value):
        return errors
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{where}: expected a structure, got {type(value).__name__}"]
        for name in shape.required_members:
            if name not in value and name not in ignore_required:
                errors.append(f"{where}: required member {name} is missing")
        for name, member in value.items():
            if name not in shape.members:
                errors.append(f"{where}: unknown member {name} (known: {', '.join(shape.members)})")
                continue
            errors += check(
                shape.members[name], member, f"{path}.{name}" if path else name, expressions=expressions
            )
        return errors
    metadata = shape.metadata
    if kind == "list":
        if not isinstance(value, list):
            return [f"{where}: expected a list, got {type(value).__name__}"]
        errors += _bounds(where, len(value), metadata, "items")
        for i, item in enumerate(value):
            errors += check(shape.member, item, f"{path}[{i}]", expressions=expressions)
        return errors
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{where}: expected a map, got {type(value).__name__}"]
        errors += _bounds(where, len(value), metadata, "entries")
        for key, item in value.items():
            errors += check(shape.key, key, f"{path}[key {key!r}]", expressions=expressions)
            errors += check(shape.value, item, f"{path}[{key!r}]", expressions=expressions)
        return errors
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: expected a string, got {type(value).__name__}"]
        if shape.enum and value not in shape.enum:
            errors.append(
                f"{where}: {value!r} is not one of {shape.name}'s values ({', '.join(shape.enum[:12])}"
                f"{', ...' if len(shape.enum) > 12 else ''})"
            )
        errors += _bounds(where, len(value), metadata, "characters")
        pattern = metadata.get("pattern")
        if pattern and not _compile(pattern).search(value):
            errors.append(f"{where}: {value!r} does not match the pattern {pattern} of {shape.name}")
        return errors
    if kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            return [f"{where}: expected an integer, got {type(value).__name__}"]
        return _range(where, value, metadata)
    if kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return [f"{where}: expected a number, got {type(value).__name__}"]
        return _range(where, value, metadata)
    if kind == "boolean" and not isinstance(value, bool):
        return [f"{where}: expected true or false, got {type(value).__name__}"]
    if kind == "blob" and not isinstance(value, (bytes, bytearray, str)) and not hasattr(value, "read"):
        return [f"{where}: expected bytes, got {type(value).__name__}"]
    if kind == "timestamp" and not isinstance(value, (datetime.datetime, str, int, float)):
        return [f"{where}: expected a timestamp, got {type(value).__name__}"]
    return errors


def _bounds(where: str, size: int, metadata: dict, unit: str) -> list[str]:
    errors = []
    if "min" in metadata and size < metadata["min"]:
        errors.append(f"{where}: {size} {unit}, at least {metadata['min']} required")
    if "max" in metadata and size > metadata["max"]:
        errors.append(f"{where}: {size} {unit}, at most {metadata['max']} allowed")
    return errors


def _range(where: str, value, metadata: dict) -> list[str]:
    errors = []
    if "min" in metadata and value < metadata["min"]:
        errors.append(f"{where}: {value} is below the minimum {metadata['min']}")
    if "max" in metadata and value > metadata["max"]:
        errors.append(f"{where}: {value} is above the maximum {metadata['max']}")
    return errors


@functools.cache
def operation(service: str, name: str):
    return botocore.session.get_session().get_service_model(service).operation_model(name)


def check_operation(service: str, name: str, params: dict, **options) -> list[str]:
    """Violations of `params` as the input of `service`'s operation `name` (e.g. sagemaker, CreateModel)."""
    model = operation(service, name)
    return (
        [f"{service}.{name}: {e}" for e in check(model.input_shape, params, **options)]
        if model.input_shape
        else []
    )


class RequestChecker:
    """Checks and records every request of the botocore sessions created while installed.

    `calls` holds (service, operation, params) in order; a violation raises RequestError before the
    request is sent (so the test fails at the call that is wrong).
    """

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, dict]] = []
        self._original = None

    def _handler(self, params, model, **_kwargs) -> None:
        service = model.service_model.service_name
        self.calls.append((service, model.name, params))
        errors = check(model.input_shape, params) if model.input_shape else []
        if errors:
            raise RequestError(f"{service}.{model.name}: " + "; ".join(errors))

    def install(self, monkeypatch) -> RequestChecker:
        original = botocore.session.Session.__init__
        checker = self

        def init(session, *args, **kwargs):
            original(session, *args, **kwargs)
            session.register("before-parameter-build", checker._handler)

        monkeypatch.setattr(botocore.session.Session, "__init__", init)
        return self

    def operations(self, service: str | None = None) -> list[str]:
        return [name for s, name, _ in self.calls if service in (None, s)]

    def requests(self, name: str) -> list[dict]:
        return [params for _, op, params in self.calls if op == name]
