"""A parser for Azure Pipelines runtime expressions (the `condition:` language).

It accepts literals ('text', numbers, versions, true/false/null), function calls, and property
references on the expression contexts (variables['x'], dependencies.A.outputs['s.v'], ...), and
reports the first problem: unbalanced parentheses/brackets/quotes, unknown functions, or bare
names (which Azure rejects with "Unrecognized value").
"""

from __future__ import annotations

import re

FUNCTIONS = {
    name.lower() for name in (
        "and", "or", "not", "xor", "eq", "ne", "gt", "ge", "lt", "le", "in", "notIn", "contains",
        "containsValue", "startsWith", "endsWith", "format", "join", "coalesce", "counter", "convertToJson",
        "lower", "upper", "length", "replace", "split", "trim", "iif", "succeeded", "failed",
        "succeededOrFailed", "always", "canceled",
    )
}
CONTEXTS = {"variables", "dependencies", "stagedependencies", "pipeline", "resources", "parameters",
            "environment", "strategy"}
_TEMPLATE = re.compile(r"\$\{\{.*?\}\}|\$\(.*?\)", re.DOTALL)
_TOKEN = re.compile(
    r"\s*(?:(?P<str>'(?:[^']|'')*')|(?P<num>-?\d+(?:\.\d+)*)|(?P<name>[A-Za-z_][A-Za-z0-9_-]*)"
    r"|(?P<punct>[()\[\],.])|(?P<bad>'|\S))"
)


class ExprError(Exception):
    def __init__(self, offset: int, message: str) -> None:
        super().__init__(message)
        self.offset = offset
        self.message = message


def _tokens(text: str) -> list[tuple[str, str, int]]:
    out = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            break
        pos = match.end()
        kind = match.lastgroup
        value = match.group(kind)
        start = match.start(kind)
        if kind == "bad":
            if value == "'":
                raise ExprError(start, "a string starting here is never closed with '")
            raise ExprError(start, f"unexpected character {value!r}")
        out.append((kind, value, start))
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.i = 0
        self.end = len(text)

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, value: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            want = f"{value!r}" if value else "a value"
            raise ExprError(self.end, f"the expression ends where {want} was expected (unbalanced brackets?)")
        if value is not None and tok[1] != value:
            raise ExprError(tok[2], f"expected {value!r} but found {tok[1]!r}")
        self.i += 1
        return tok

    def expression(self) -> None:
        kind, value, start = self.take()
        if kind in ("str", "num"):
            return
        if kind != "name":
            raise ExprError(start, f"expected a value, a function call or a variable reference, found {value!r}")
        nxt = self.peek()
        if nxt is not None and nxt[1] == "(":
            if value.lower() not in FUNCTIONS:
                raise ExprError(start, f"unknown function {value!r}")
            self.take("(")
            if self.peek() is not None and self.peek()[1] == ")":
                self.take(")")
                return
            self.expression()
            while self.peek() is not None and self.peek()[1] == ",":
                self.take(",")
                self.expression()
            self.take(")")
            return
        if value.lower() in ("true", "false", "null"):
            return
        if value.lower() not in CONTEXTS:
            raise ExprError(start, f"bare name {value!r} is not a value Azure understands (\"Unrecognized value\"); "
                                   f"use variables['{value}'], '{value}' in quotes, or ${{{{ parameters.{value} }}}}")
        while self.peek() is not None and self.peek()[1] in (".", "["):
            if self.take()[1] == ".":
                kind, value, start = self.take()
                if kind not in ("name", "num"):
                    raise ExprError(start, f"expected a property name after '.', found {value!r}")
            else:
                self.expression()
                self.take("]")


def check_condition(text: str) -> ExprError | None:
    """None when `text` is a well-formed runtime expression, else the first problem."""
    masked = _TEMPLATE.sub(lambda m: "'" + "x" * (len(m.group(0)) - 2) + "'", text)
    if not masked.strip():
        return ExprError(0, "the condition is empty")
    try:
        parser = _Parser(masked)
        parser.expression()
        extra = parser.peek()
        if extra is not None:
            if extra[1] == ")":
                raise ExprError(extra[2], "')' has no matching '(' (unbalanced parentheses)")
            raise ExprError(extra[2], f"unexpected {extra[1]!r} after a complete expression")
    except ExprError as exc:
        return exc
    return None
