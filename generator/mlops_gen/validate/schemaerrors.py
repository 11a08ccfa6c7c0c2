"""Turn jsonschema errors into findings a user can act on.

jsonschema's own messages name schema internals (`'x' does not match '^PowerShell@2$'`) and its
`best_match` often picks the wrong `anyOf` branch. Here every `anyOf`/`oneOf` failure descends
into the branch the data was evidently meant for (the one whose discriminating keys and types
match), and each leaf error becomes "where: what is wrong; what is allowed".
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from mlops_gen.validate.context import Context
from mlops_gen.validate.yamlpos import locate

if TYPE_CHECKING:  # only annotations: a file without schema errors never imports jsonschema (see proofs/)
    from jsonschema.exceptions import ValidationError

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "null": "empty (null)",
}
_DISCRIMINATING = {"type", "required", "const", "enum", "pattern"}
# Patterns of the vendored schemas, said in words.
_PATTERN_HINTS = {
    r"^\d+(\.\d{0,9})?s$": "a duration in seconds with an s suffix, e.g. '1200s'",
}


def describe_type(value: Any) -> str:
    if value is None:
        return "empty (null)"
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"the number {value}"
    return f"the string {str(value)!r}"


def dotted(path: Iterable[Any]) -> str:
    out = ""
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else (f".{step}" if out else str(step))
    return out or "the top level"


def leaf_errors(error: ValidationError) -> list[ValidationError]:
    """The errors that explain `error`, descending into the most plausible anyOf/oneOf branch."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[int, list[ValidationError]] = {}
    for sub in error.context:
        branches.setdefault(sub.relative_schema_path[0], []).append(sub)
    plausible = [
        (index, errs)
        for index, errs in branches.items()
        if not any(e.validator in _DISCRIMINATING and not e.relative_path for e in errs)
    ]
    if not plausible:
        return [error]  # no branch fits at all: summarised by message_for()

    def fit(item: tuple[int, list[ValidationError]]) -> tuple[int, int, int]:
        index, errs = item
        # The branch whose leading key (`firstProperty`, e.g. job/deployment) is present is the form
        # the author meant; a branch with unknown keys at its own top is a wrong form, not a near miss.
        branch = error.validator_value[index] if isinstance(error.validator_value, list) else {}
        first = branch.get("firstProperty", []) if isinstance(branch, dict) else []
        named = 0 if not first or (isinstance(error.instance, dict) and any(k in error.instance for k in first)) else 1
        unknown = sum(x.validator == "additionalProperties" and not x.relative_path for x in errs)
        return named, unknown, len(errs)

    errs = min(plausible, key=fit)[1]
    out: list[ValidationError] = []
    for sub in errs:
        out.extend(leaf_errors(sub))
    return out


def _branch_summary(error: ValidationError) -> str:
    """For an anyOf/oneOf that no branch fits: what kinds of value would have been accepted."""
    types: list[str] = []
    keys: list[str] = []
    values: list[str] = []
    for sub in error.context or []:
        if sub.relative_path:
            continue
        if sub.validator == "type":
            wanted = sub.validator_value if isinstance(sub.validator_value, list) else [sub.validator_value]
            types.extend(_TYPE_NAMES.get(t, t) for t in wanted)
        elif sub.validator == "required":
            keys.extend(k for k in sub.validator_value if k not in (error.instance or {}))
        elif sub.validator in ("enum", "const"):
            vals = sub.validator_value if sub.validator == "enum" else [sub.validator_value]
            values.extend(str(v) for v in vals)
        elif sub.validator == "pattern":
            values.append(str(sub.validator_value).strip("^$"))
    parts = []
    if keys and isinstance(error.instance, dict):
        parts.append("needs one of the keys " + ", ".join(dict.fromkeys(keys)))
    if values:
        parts.append("allowed values: " + ", ".join(dict.fromkeys(values)))
    if types and not keys:
        parts.append("expected " + " or ".join(dict.fromkeys(types)))
    return "; ".join(parts) or error.message


def message_for(error: ValidationError, label: str = "") -> tuple[list[Any], str]:
    """(path to point at, message) for one leaf error."""
    path = list(error.absolute_path)
    where = label or dotted(path)
    v, inst = error.validator, error.instance
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    if v == "additionalProperties" and isinstance(inst, dict):
        allowed = list(error.schema.get("properties", {}))
        extras = [k for k in inst if k not in allowed]
        key = extras[0] if extras else None
        hint = ""
        if key is not None:
            close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
        allowed_txt = ", ".join(allowed) if allowed else "none"
        return path + ([key] if key is not None else []), (
            f"unknown key {key!r} in {where}{hint}; allowed keys: {allowed_txt}"
        )
    if custom:
        return path, f"{where}: {custom}, not {describe_type(inst)}"
    if v == "required":
        missing = [k for k in error.validator_value if not (isinstance(inst, dict) and k in inst)]
        return path, f"{where} is missing the required key {missing[0]!r}"
    if v == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        names = " or ".join(_TYPE_NAMES.get(t, t) for t in wanted)
        return path, f"{where} must be {names}, not {describe_type(inst)}"
    if v == "enum":
        return path, f"{where} is {inst!r}; allowed values: {', '.join(map(str, error.validator_value))}"
    if v == "const":
        return path, f"{where} must be {error.validator_value!r}, not {inst!r}"
    if v == "pattern":
        hint = _PATTERN_HINTS.get(error.validator_value)
        if hint:
            return path, f"{where} is {str(inst)!r}; it must be {hint}"
        return path, f"{where} is {str(inst)!r}, which does not match the pattern {error.validator_value}"
    if v in ("minItems", "minProperties", "minLength"):
        return path, f"{where} must not be empty"
    if v in ("anyOf", "oneOf"):
        if v == "oneOf" and not error.context:
            return path, f"{where} matches more than one of the allowed forms; use exactly one"
        summary = _branch_summary(error)
        if summary.startswith("needs one of the keys"):
            return path, f"{where} {summary}"
        return path, f"{where} is {describe_type(inst)}, which is not allowed here: {summary}"
    if v == "not":
        return path, f"{where}: this combination of keys is not allowed"
    if v == "maxProperties" and error.validator_value == 1:
        return path, f"{where} must have exactly one key, got {', '.join(map(str, inst))}"
    return path, f"{where}: {error.message}"


def unknown_keys(error: ValidationError) -> list[tuple[str, str | None]]:
    """For an additionalProperties error: each key not allowed there, with its near miss (or None)."""
    allowed = [str(k) for k in error.schema.get("properties", {})] if isinstance(error.schema, dict) else []
    out = []
    for key in error.instance if isinstance(error.instance, dict) else []:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
        out.append((key, close[0] if close else None))
    return out


def is_empty_list(error: ValidationError) -> bool:
    """A null where a list is expected: `key:` with nothing after it, or every item commented out."""
    if error.instance is not None or error.validator != "type":
        return False
    wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
    return "array" in wanted


def report_schema_errors(ctx: Context, rule: str, errors: Iterable[ValidationError], data: Any = None, *,
                         unknown_key: Callable[[list, str, str | None], tuple[str, str] | None] | None = None,
                         empty_list: str | None = None) -> None:
    """Report each leaf error; `data` is the validated instance when it is not ctx.data.

    `unknown_key(path, key, near_miss)` -> (rule, message suffix) decides each unknown key, or None for
    the default: `rule`, with "did you mean" for a near miss of an allowed key.
    `empty_list` is the rule for a null where a list is expected (else `rule`).
    """
    root = ctx.data if data is None else data
    for error in errors:
        for leaf in leaf_errors(error):
            if leaf.validator == "additionalProperties" and isinstance(leaf.instance, dict) and not leaf.schema.get(
                    "x-message"):
                path = list(leaf.absolute_path)
                allowed = ", ".join(map(str, leaf.schema.get("properties", {}))) or "none"
                for key, close in unknown_keys(leaf):
                    where = f"unknown key {key!r} in {dotted(path)}"
                    decided = unknown_key(path, key, close) if unknown_key else None
                    which, why = decided or (rule, f" (did you mean {close!r}?)" if close else "")
                    ctx.report(which, locate(root, path + [key]), f"{where}{why}; allowed keys: {allowed}")
                continue
            path, message = message_for(leaf)
            which = empty_list if empty_list and is_empty_list(leaf) else rule
            if which != rule:
                message += "; it is read as an empty list (all its items commented out?), so it does nothing"
            ctx.report(which, locate(root, path), message)
