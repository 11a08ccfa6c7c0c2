"""Reading the template's questions and checking `--data KEY=VALUE` answers before copier runs,
so that every bad answer is reported as one line naming the question."""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from mlops_gen import TEMPLATE_ROOT


class AnswerError(ValueError):
    """An answer the template does not accept; str() is one line naming the question."""


def questions(template: Path = TEMPLATE_ROOT) -> dict[str, dict]:
    """The questions of copier.yml (settings starting with `_` are not questions)."""
    data = yaml.safe_load((template / "copier.yml").read_text())
    found = {k: (v if isinstance(v, dict) else {"default": v}) for k, v in data.items() if not k.startswith("_")}
    # `when: false` entries are computed values, not questions a user can answer.
    return {k: v for k, v in found.items() if v.get("when") is not False}


_CASTS = {"float": (float, "a number"), "int": (int, "an integer")}


def parse_data(pairs: tuple[str, ...], known: dict[str, dict]) -> dict[str, str]:
    """KEY=VALUE pairs -> answers. Unknown keys and values of the wrong type are errors."""
    answers: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise AnswerError(f"--data {pair!r}: expected KEY=VALUE")
        spec = known.get(key)
        if spec is None:
            raise AnswerError(f"{key}: no such question (questions: {', '.join(sorted(known))})")
        kind = spec.get("type", "str")
        if kind in _CASTS:
            cast, noun = _CASTS[kind]
            try:
                number = cast(value)
            except ValueError:
                raise AnswerError(f"{key}: expected {noun}, got {value!r}") from None
            if not math.isfinite(number):
                raise AnswerError(f"{key}: expected a finite number, got {value!r}")
        if spec.get("multiselect"):
            value = _as_yaml_list(key, value, spec)
        answers[key] = value
    return answers


def _as_yaml_list(key: str, value: str, spec: dict) -> str:
    """A multiselect answer as copier expects it (a YAML list); `aws,gcp` is accepted too."""
    try:
        items = yaml.safe_load(value) if value.strip().startswith("[") else [v.strip() for v in value.split(",")]
    except yaml.YAMLError:
        items = None
    if not isinstance(items, list) or not all(isinstance(i, str) and i for i in items):
        raise AnswerError(f"{key}: expected a list like aws,gcp or [aws, gcp], got {value!r}")
    choices = spec.get("choices")
    allowed = [str(c) for c in (choices.values() if isinstance(choices, dict) else choices or [])]
    unknown = [i for i in items if allowed and i not in allowed]
    if unknown:
        raise AnswerError(f"{key}: {', '.join(map(repr, unknown))} is not in {', '.join(allowed)}")
    return "[" + ", ".join(items) + "]"


_COPIER_PREFIX = re.compile(r"^(?:Validation error for question|Invalid choice for) '([^']+)':\s*")
_COPIER_REQUIRED = re.compile(r'^Question "([^"]+)" is required$')


def explain(exc: Exception) -> str:
    """copier's ValueError -> one line that starts with the question's name."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _COPIER_PREFIX.match(message)
    if match:
        name, rest = match.group(1), message[match.end():]
        return rest if rest.startswith(f"{name}:") else f"{name}: {rest}"
    match = _COPIER_REQUIRED.match(message)
    if match:  # a question without a default, left unanswered under --defaults
        return f"{match.group(1)}: required, it has no default (give it with --data {match.group(1)}=...)"
    return message
