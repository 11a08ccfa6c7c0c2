"""Reading the template's questions and checking `--data KEY=VALUE` answers before copier runs,
so that every bad answer is reported as one line naming the question."""

from __future__ import annotations

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
                cast(value)
            except ValueError:
                raise AnswerError(f"{key}: expected {noun}, got {value!r}") from None
        answers[key] = value
    return answers


_COPIER_PREFIX = re.compile(r"^(?:Validation error for question|Invalid choice for) '([^']+)':\s*")


def explain(exc: Exception) -> str:
    """copier's ValueError -> one line that starts with the question's name."""
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    match = _COPIER_PREFIX.match(message)
    if match:
        name, rest = match.group(1), message[match.end():]
        return rest if rest.startswith(f"{name}:") else f"{name}: {rest}"
    return message
