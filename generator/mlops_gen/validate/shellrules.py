"""Rules about shell text inside CI steps, shared by every dialect."""

from __future__ import annotations

import re

from mlops_gen.validate.context import Context
from mlops_gen.validate.yamlpos import Str

# `cmd || true`, `cmd || :` (optionally followed by ; && || ) or end), and `set +e` / `set +o errexit`.
_IGNORE_FAILURE = re.compile(
    r"\|\|\s*(?:true|:)(?=\s*(?:$|[;&|)#]))"
    r"|(?<![\w.-])set\s+(?:\+[a-zA-Z]*e[a-zA-Z]*|\+o\s+errexit)\b",
    re.MULTILINE,
)


def source_position(ctx: Context, s: Str, offset: int, needle: str) -> tuple[int, int]:
    """0-based position of `s[offset:]` in the file: exact for one-line and block scalars."""
    if not isinstance(s, Str):
        return (0, 0)
    line_in_value = s.count("\n", 0, offset)
    if s.block:
        line = s.line + 1 + line_in_value
    elif line_in_value == 0:
        return (s.line, s.col + offset + (0 if s.plain else 1))
    else:
        line = s.line + line_in_value
    lines = ctx.text.splitlines()
    if 0 <= line < len(lines):
        col = lines[line].find(needle.strip())
        if col >= 0:
            return (line, col)
    return (s.line, s.col)


def check_ignored_failures(ctx: Context, script: object, what: str = "this step") -> None:
    if not isinstance(script, str):
        return
    for match in _IGNORE_FAILURE.finditer(script):
        text = match.group(0).strip()
        if text.startswith("set"):
            message = (f"`{text}` in {what} keeps going after a failed command; remove it "
                       "(handle an expected failure explicitly, e.g. `if ! cmd; then ...; fi`)")
        else:
            message = (f"`{text}` in {what} hides the failure of the command before it; "
                       "remove it, or test the expected condition explicitly")
        ctx.report("shell-ignore-failure", source_position(ctx, script, match.start(), text), message)
