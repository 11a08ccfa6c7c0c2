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
            message = (f"`{text}` in {what}: later commands run even after one fails; if that is not meant "
                       "for cleanup, handle the expected failure explicitly (`if ! cmd; then ...; fi`)")
        else:
            message = (f"`{text}` in {what}: the command before it can never fail the step; "
                       "fine for cleanup, otherwise test the expected condition explicitly")
        ctx.report("shell-ignore-failure", source_position(ctx, script, match.start(), text), message)


# Bash features that POSIX sh (dash, /bin/sh on Debian and Ubuntu images) lacks: (name, pattern).
_CMD = r"(?:^|[;&|(]\s*|\b(?:then|do|else)\s+)"  # the start of a command
BASH_FEATURES: list[tuple[str, re.Pattern[str]]] = [(name, re.compile(pattern, re.MULTILINE)) for name, pattern in [
    ("the [[ ]] test", r"(?:^|[\s;&|(!])(?P<f>\[\[)\s"),
    ("set -o pipefail", r"(?<![\w-])(?P<f>set\s+(?:-[a-zA-Z]+\s+)*-[a-zA-Z]*o\s+pipefail)\b"),
    ("the source builtin", _CMD + r"(?P<f>source)\s+\S"),
    ("an array assignment", r"(?:^|[\s;&|])(?P<f>[A-Za-z_][A-Za-z0-9_]*=\()"),
    ("an array reference", r"(?P<f>\$\{[#!]?[A-Za-z_][A-Za-z0-9_]*\[)"),
    ("process substitution", r"(?:^|[\s;&|])(?P<f>[<>]\()"),
    ("brace expansion", r"(?<![$\\{])(?P<f>\{(?:[^\s{}$,'\"]*,[^\s{}'\"]*|-?\w+\.\.-?\w+)\})"),
    ("the function keyword", _CMD + r"(?P<f>function\s+[A-Za-z_][\w-]*)"),
    ("== inside [ ]", r"(?:^|[\s;&|(!])\[\s(?:[^\]\[]*?\s)?(?P<f>==)\s"),
    ("$'...' quoting", r"(?<![\\$])(?P<f>\$')"),
    ("&> redirection", r"(?<![&>\d])(?P<f>&>)"),
    ("pushd/popd", _CMD + r"(?P<f>pushd|popd)\b"),
    ("shopt/declare", _CMD + r"(?P<f>shopt|declare|typeset)\s"),
    ("an (( )) arithmetic command", _CMD + r"(?P<f>\(\()"),
    ("${var/pattern/replacement}", r"(?P<f>\$\{[A-Za-z_][A-Za-z0-9_]*//?[^}]*\})"),
    ("${var:offset}", r"(?P<f>\$\{[A-Za-z_][A-Za-z0-9_]*:\d[^}]*\})"),
    ("${var^^}/${var,,}", r"(?P<f>\$\{[A-Za-z_][A-Za-z0-9_]*(?:\^\^?|,,?)\})"),
]]
# A command run by bash itself (`bash -c '...'`, `bash script.sh`): what follows is bash's business.
_RUNS_BASH = re.compile(r"^\s*(?:sudo\s+)?(?:/usr/bin/env\s+|/bin/|/usr/bin/)?bash(?:\s|$)")
_QUOTED = re.compile(r"'[^']*'|\"(?:[^\"\\]|\\.)*\"")
# Commands that are evidently PowerShell or cmd.exe: a Windows buildspec, where sh never runs.
_WINDOWS = re.compile(
    r"\$env:|\b(?:Get|Set|New|Remove|Invoke|Write|Import|Install|Copy|Move|Test|Start|Stop|Expand|Compress|Out|"
    r"Select|Where|ForEach|Add|Update|Register|Join|Split|Resolve|Push|Pop|Export|Convert|ConvertTo|ConvertFrom)"
    r"-[A-Z][A-Za-z]+\b|\.ps1\b|%[A-Za-z_][A-Za-z0-9_]*%|\b[A-Za-z]:\\\\?[A-Za-z]|\bpowershell(?:\.exe)?\b|\bpwsh\b",
    re.IGNORECASE)


def bash_feature(command: str) -> tuple[str, int, str] | None:
    """The first bash-only feature a /bin/sh command uses: (feature, offset, text), or None."""
    if _RUNS_BASH.match(command):
        return None
    # Quoted text is not shell syntax (except $'..' itself); blank it out, keeping offsets.
    bare = _QUOTED.sub(lambda m: m.group(0)[0] + " " * (len(m.group(0)) - 2) + m.group(0)[-1], command)
    best: tuple[str, int, str] | None = None
    for name, pattern in BASH_FEATURES:
        match = pattern.search(command if name == "$'...' quoting" else bare)
        if match and (best is None or match.start("f") < best[1]):
            best = (name, match.start("f"), command[match.start("f"):match.end("f")])
    return best


def looks_like_windows(command: str) -> bool:
    """True for PowerShell or cmd.exe text (Write-Host, $env:X, %VAR%, C:\\...)."""
    return bool(_WINDOWS.search(command))
