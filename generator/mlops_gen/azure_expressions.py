"""Azure Pipelines expressions: one tokenizer, parser and evaluator for `validate` and `ci run`.

One grammar serves runtime conditions (`condition: and(succeeded(), eq(variables['x'], 'y'))`),
runtime expressions (`$[ ... ]`) and compile-time template expressions (`${{ ... }}`):

    expr     := literal | call | ref
    call     := IDENT '(' [expr (',' expr)*] ')'
    ref      := IDENT ('.' IDENT | '[' expr ']')*
    literal  := 'string' ('' escapes a quote) | number | version (1.2.3) | true | false | null

Type rules follow Microsoft's expressions documentation: comparisons convert the right operand
to the type of the left one; string comparison is ordinal and case-insensitive; a string is
true unless empty (so 'false' is true), a number unless 0, null is false; a version literal
has two or three dots. `validate` uses `check_condition` (parse, known functions, their arity,
no bare names); inside a condition a `${{ }}` or `$( )` outside quotes is a value known only
after expansion, and inside quotes it is text like any other; a `${{ }}` is read whole wherever it
is (Azure expands it before reading the condition), quotes inside it included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any


class ExprError(ValueError):
    """A malformed or failing expression; `offset` is where in the text, when known."""

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset


@dataclass(frozen=True, order=True)
class Version:
    """A version value (`1.2.3`): compared part by part."""

    parts: tuple[int, ...]

    @classmethod
    def parse(cls, text: str) -> Version | None:
        if not re.fullmatch(r"\d+(\.\d+){1,3}", text.strip()):
            return None
        return cls(tuple(int(p) for p in text.strip().split(".")))

    def __str__(self) -> str:
        return ".".join(map(str, self.parts))


class Unknown:
    """The value of a `${{ }}` or `$( )` inside a condition being checked: known after expansion."""


@dataclass
class Token:
    kind: str  # str num ident ( ) [ ] , . end
    value: Any
    pos: int


_NUM = re.compile(r"-?\d+(\.\d+){0,3}")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
_MACRO = re.compile(r"\$\([^()]*\)|\$\[.*?\]", re.DOTALL)


def template_end(text: str, i: int) -> int | None:
    """Where the `${{ ... }}` starting at `i` ends (past its `}}`), reading quoted strings inside it
    (`${{ parameters['a'] }}`, `${{ join(',', x) }}`) as text; None when it is never closed."""
    if not text.startswith("${{", i):
        return None
    j, quoted = i + 3, False
    while j < len(text):
        c = text[j]
        if c == "'":
            quoted = not quoted  # '' inside a string toggles twice: still inside
        elif not quoted and text.startswith("}}", j):
            return j + 2
        j += 1
    return None


def tokenize(text: str) -> list[Token]:
    tokens, i = [], 0
    while i < len(text):
        c = text[i]
        if c.isspace():
            i += 1
        elif c in "()[],.":
            tokens.append(Token(c, c, i))
            i += 1
        elif c == "$" and (end := template_end(text, i)) is not None:
            # A template expression is replaced by its value before the condition is read.
            tokens.append(Token("unknown", text[i:end], i))
            i = end
        elif c == "$" and (m := _MACRO.match(text, i)):
            tokens.append(Token("unknown", m.group(0), i))
            i = m.end()
        elif c == "'":
            j, buf = i + 1, []
            while True:
                if j >= len(text):
                    raise ExprError("a string starting here is never closed with '", i)
                if text[j] == "$" and (end := template_end(text, j)) is not None:
                    # `'${{ parameters['x'] }}'`: expanded before the string is read; its quotes are its own
                    buf.append(text[j:end])
                    j = end
                    continue
                if text[j] == "'":
                    if j + 1 < len(text) and text[j + 1] == "'":
                        buf.append("'")
                        j += 2
                        continue
                    break
                buf.append(text[j])
                j += 1
            tokens.append(Token("str", "".join(buf), i))
            i = j + 1
        elif (m := _NUM.match(text, i)) and (c != "-" or not tokens or tokens[-1].kind in "(,["):
            v = m.group(0)
            version = Version.parse(v) if v.count(".") >= 2 else None
            if v.count(".") >= 2 and (version is None or v.startswith("-")):
                raise ExprError(f"{v!r} is neither a number nor a version", i)
            tokens.append(Token("num", version or (float(v) if "." in v else int(v)), i))
            i = m.end()
        elif m := _IDENT.match(text, i):
            tokens.append(Token("ident", m.group(0), i))
            i = m.end()
        else:
            raise ExprError(f"unexpected character {c!r}", i)
    tokens.append(Token("end", None, len(text)))
    return tokens


# AST nodes: ("lit", v) ("call", name, [args]) ("ref", root, [accessors]) where accessor is a node
class Parser:
    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.calls: list[tuple[str, int, int]] = []   # (function, offset, arguments), for static checks
        self.refs: list[tuple[str, int]] = []    # (root name, offset)

    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self, kind: str | None = None) -> Token:
        tok = self.tokens[self.i]
        if kind and tok.kind != kind:
            if tok.kind == "end":
                raise ExprError(f"the expression ends where {kind!r} was expected (unbalanced brackets?)", tok.pos)
            raise ExprError(f"expected {kind!r} but found {tok.value!r}", tok.pos)
        self.i += 1
        return tok

    def parse(self):
        if self.peek().kind == "end":
            raise ExprError("the expression is empty", 0)
        node = self.expr()
        extra = self.peek()
        if extra.kind == ")":
            raise ExprError("')' has no matching '(' (unbalanced parentheses)", extra.pos)
        if extra.kind != "end":
            raise ExprError(f"unexpected {extra.value!r} after a complete expression", extra.pos)
        return node

    def expr(self):
        tok = self.peek()
        if tok.kind in ("str", "num"):
            self.take()
            return ("lit", tok.value)
        if tok.kind == "unknown":
            self.take()
            return ("lit", Unknown())
        if tok.kind != "ident":
            found = "the end" if tok.kind == "end" else repr(tok.value)
            raise ExprError(f"expected a value, a function call or a variable reference, found {found}", tok.pos)
        self.take()
        low = tok.value.lower()
        if self.peek().kind == "(":
            self.take("(")
            args = []
            if self.peek().kind != ")":
                args.append(self.expr())
                while self.peek().kind == ",":
                    self.take(",")
                    args.append(self.expr())
            self.take(")")
            self.calls.append((low, tok.pos, len(args)))
            return ("call", low, args)
        if low in ("true", "false"):
            return ("lit", low == "true")
        if low == "null":
            return ("lit", None)
        self.refs.append((tok.value, tok.pos))
        accessors = []
        while self.peek().kind in (".", "["):
            if self.take().kind == ".":
                name = self.peek()
                if name.kind not in ("ident", "num"):
                    raise ExprError(f"expected a property name after '.', found {name.value!r}", name.pos)
                accessors.append(("lit", to_str(self.take().value)))
            else:
                accessors.append(self.expr())
                self.take("]")
        return ("ref", tok.value, accessors)


def parse(text: str):
    return Parser(text).parse()


# -- values ------------------------------------------------------------------------------------
def truthy(v: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float)):
        return v != 0
    if isinstance(v, str):
        return v != ""
    return True


def to_str(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, Version):
        return str(v)
    if isinstance(v, bool):
        return "True" if v else "False"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return str(v)


def to_num(v: Any) -> float | None:
    if v is None:
        return 0
    if isinstance(v, bool):
        return 1 if v else 0
    if isinstance(v, (int, float)):
        return v
    if isinstance(v, str):
        s = v.strip()
        if s == "":
            return 0
        try:
            return float(s)
        except ValueError:
            return None
    return None


def _coerce_pair(a: Any, b: Any):
    """(left, right) with right converted to left's type; None when not convertible."""
    if isinstance(a, Version):
        return a, b if isinstance(b, Version) else Version.parse(to_str(b))
    if isinstance(a, bool):
        return a, truthy(b)
    if isinstance(a, (int, float)):
        return a, to_num(b)
    if isinstance(a, str):
        return a.lower(), to_str(b).lower()
    return a, b


def equal(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None or (a is None and b == "") or (b is None and a == "")
    left, right = _coerce_pair(a, b)
    return right is not None and left == right


def compare(a: Any, b: Any) -> int:
    left, right = _coerce_pair(a, b)
    if right is None or left is None:
        raise ExprError(f"cannot compare {a!r} with {b!r}")
    return (left > right) - (left < right)


class CIDict(MutableMapping):
    """A mapping with case-insensitive keys that remembers their spelling (Azure names are
    case-insensitive)."""

    def __init__(self, *args, **kw):
        self._data: dict[str, tuple[str, Any]] = {}
        self.update(*args, **kw)

    def __setitem__(self, key, value):
        self._data[str(key).lower()] = (str(key), value)

    def __getitem__(self, key):
        return self._data[str(key).lower()][1]

    def __delitem__(self, key):
        del self._data[str(key).lower()]

    def __contains__(self, key):
        return str(key).lower() in self._data

    def __iter__(self):
        return (k for k, _ in self._data.values())

    def __len__(self):
        return len(self._data)

    def copy(self) -> CIDict:
        return CIDict(self.items())


def _index(obj: Any, key: Any) -> Any:
    if isinstance(obj, CIDict):
        return obj.get(to_str(key))  # type: ignore[union-attr]
    if isinstance(obj, dict):
        if key in obj:
            return obj[key]
        low = to_str(key).lower()
        for k, v in obj.items():
            if str(k).lower() == low:
                return v
        return None
    if isinstance(obj, list):
        n = to_num(key)
        return obj[int(n)] if n is not None and 0 <= int(n) < len(obj) else None
    return None


def _format(fmt: str, *args: Any) -> str:
    def sub(m):
        if m.group(0) in ("{{", "}}"):
            return m.group(0)[0]
        i = int(m.group(1))
        return to_str(args[i]) if i < len(args) else ""
    return re.sub(r"\{\{|\}\}|\{(\d+)(?::[^}]*)?\}", sub, fmt)


class Evaluator:
    """Evaluate parsed expressions against named roots and status functions.

    `roots`: name → value (variables, parameters, dependencies, ...; case-insensitive names).
    `status`: name → callable(*job_or_stage_names) -> bool for succeeded/failed/... ; when a
    status function is used where none is available, that is an error naming it.
    """

    def __init__(self, roots: dict[str, Any], status: dict[str, Callable[..., bool]] | None = None):
        self.roots = CIDict(roots)
        self.status = status or {}

    def evaluate(self, text: str) -> Any:
        return self.eval(parse(text))

    def eval(self, node) -> Any:
        kind = node[0]
        if kind == "lit":
            return node[1]
        if kind == "ref":
            if node[1] not in self.roots:
                raise ExprError(f"unknown name {node[1]!r} in expression (known: {', '.join(self.roots.keys())})")
            value = self.roots[node[1]]
            for acc in node[2]:
                value = _index(value, self.eval(acc))
            return value
        name, args = node[1], node[2]
        if name in ("succeeded", "failed", "succeededorfailed", "always", "canceled"):
            if name == "always":
                return True
            fn = self.status.get(name)
            if fn is None:
                raise ExprError(f"{name}() cannot be used here")
            return fn(*[to_str(self.eval(a)) for a in args])
        lazy = {"and", "or", "iif"}
        if name in lazy:
            if name == "and":
                return all(truthy(self.eval(a)) for a in args)
            if name == "or":
                return any(truthy(self.eval(a)) for a in args)
            self._arity(name, args, 3, 3)
            return self.eval(args[1]) if truthy(self.eval(args[0])) else self.eval(args[2])
        values = [self.eval(a) for a in args]
        fn = FUNCTIONS.get(name)
        if fn is None:
            raise ExprError(f"unknown function {name}() in expression")
        lo, hi, impl = fn
        self._arity(name, values, lo, hi)
        return impl(*values)

    @staticmethod
    def _arity(name, args, lo, hi):
        if len(args) < lo or (hi is not None and len(args) > hi):
            upper = "" if hi == lo else f"..{hi if hi else 'n'}"
            raise ExprError(f"{name}() takes {lo}{upper} arguments, got {len(args)}")


def _contains(a, b):
    if isinstance(a, (list, tuple)):
        return any(equal(x, b) for x in a)
    return to_str(b).lower() in to_str(a).lower()


FUNCTIONS: dict[str, tuple[int, int | None, Callable]] = {
    "not": (1, 1, lambda a: not truthy(a)),
    "xor": (2, 2, lambda a, b: truthy(a) != truthy(b)),
    "eq": (2, 2, equal),
    "ne": (2, 2, lambda a, b: not equal(a, b)),
    "gt": (2, 2, lambda a, b: compare(a, b) > 0),
    "ge": (2, 2, lambda a, b: compare(a, b) >= 0),
    "lt": (2, 2, lambda a, b: compare(a, b) < 0),
    "le": (2, 2, lambda a, b: compare(a, b) <= 0),
    "in": (1, None, lambda a, *rest: any(equal(a, b) for b in rest)),
    "notin": (1, None, lambda a, *rest: not any(equal(a, b) for b in rest)),
    "contains": (2, 2, _contains),
    "containsvalue": (2, 2, lambda a, b: any(equal(x, b) for x in (a.values() if isinstance(a, dict) else a or []))),
    "startswith": (2, 2, lambda a, b: to_str(a).lower().startswith(to_str(b).lower())),
    "endswith": (2, 2, lambda a, b: to_str(a).lower().endswith(to_str(b).lower())),
    "lower": (1, 1, lambda a: to_str(a).lower()),
    "upper": (1, 1, lambda a: to_str(a).upper()),
    "trim": (1, 1, lambda a: to_str(a).strip()),
    "length": (1, 1, lambda a: len(a) if isinstance(a, (list, dict)) else len(to_str(a))),
    "coalesce": (1, None, lambda *a: next((v for v in a if v is not None and v != ""), None)),
    "format": (1, None, lambda f, *a: _format(to_str(f), *a)),
    "join": (2, 2, lambda sep, arr: to_str(sep).join(to_str(x) for x in arr) if isinstance(arr, list) else to_str(arr)),
    "split": (2, 2, lambda s, sep: to_str(s).split(to_str(sep))),
    "replace": (3, 3, lambda s, a, b: to_str(s).replace(to_str(a), to_str(b))),
    "converttojson": (1, 1, lambda a: json.dumps(a, indent=2)),
}


# -- static checks (validate) ------------------------------------------------------------------
STATUS_FUNCTIONS = {"succeeded": (0, None), "failed": (0, None), "succeededorfailed": (0, None),
                    "always": (0, 0), "canceled": (0, 0), "and": (2, None), "or": (2, None), "iif": (3, 3),
                    "counter": (0, 2)}
CONTEXTS = {"variables", "dependencies", "stagedependencies", "pipeline", "resources", "parameters",
            "environment", "strategy"}


def check_condition(text: str) -> ExprError | None:
    """None when `text` is a well-formed runtime expression, else the first problem (with its offset):
    syntax, an unknown function, a wrong number of arguments, or a bare name (Azure: "Unrecognized value")."""
    try:
        parser = Parser(text)
        parser.parse()
    except ExprError as exc:
        return exc
    for name, offset, count in parser.calls:
        arity = STATUS_FUNCTIONS.get(name) or (FUNCTIONS[name][:2] if name in FUNCTIONS else None)
        spelled = text[offset:offset + len(name)]
        if arity is None:
            return ExprError(f"unknown function {spelled!r}", offset)
        low, high = arity
        if count < low or (high is not None and count > high):
            expected = f"{low}" if low == high else f"at least {low}" if high is None else f"{low} to {high}"
            return ExprError(f"{spelled}() takes {expected} argument(s), got {count}", offset)
    for name, offset in parser.refs:
        if name.lower() not in CONTEXTS:
            return ExprError(f"bare name {name!r} is not a value Azure understands (\"Unrecognized value\"); use "
                             f"variables['{name}'], '{name}' in quotes, or ${{{{ parameters.{name} }}}}", offset)
    return None
