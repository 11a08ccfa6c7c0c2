"""YAML with positions, converted to plain Python data whose mapping keys and string values remember
their line and column.

Plain dicts, lists and scalars mean every consumer (jsonschema, protobuf, check-jsonschema's
transforms) sees ordinary data, while `locate()` can still turn a path into a position. Keys are
`Key` (a str) and strings are `Str` (a str), so they survive transforms that rebuild containers.

The data is what ruamel.yaml's round-trip loader (YAML 1.2) reads. Most files are composed by
libyaml (PyYAML's C parser, ~30x faster than ruamel's pure-Python one: the largest cost of checking
an Azure Pipelines file) and typed here by YAML 1.2's rules as ruamel applies them. What that path
does not reproduce exactly is handed to ruamel itself: anchors (ruamel types anchored scalars
differently), explicit tags, merge keys, timestamps, non-scalar or float keys, `%` directives, and
any text libyaml refuses (ruamel words the error). tests/validate/test_yaml_positions.py checks that
both paths give the same data and positions on every CI file the tests hold.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from yaml import YAMLError
from yaml.nodes import ScalarNode, SequenceNode
from yaml.resolver import BaseResolver

try:
    from yaml.cyaml import CParser
except ImportError:  # a PyYAML built without libyaml: every file takes ruamel's path
    CParser = None


class Key(str):
    """A mapping key with its 0-based position; `value_pos` is where its value starts."""

    line: int
    col: int
    value_pos: tuple[int, int]


class Str(str):
    """A string scalar with its 0-based position; `plain` when it was written unquoted, `block`
    for `|`/`>` scalars (whose text starts on the next line)."""

    line: int
    col: int
    plain: bool
    block: bool


class Seq(list):
    """A sequence that remembers where each item starts."""

    line: int
    col: int
    item_pos: list[tuple[int, int]]


class Map(dict):
    line: int
    col: int


@dataclass
class YamlError(Exception):
    line: int  # 0-based
    col: int
    message: str


class _RoundTrip(Exception):
    """Raised where the libyaml path would not give exactly what ruamel gives."""


def load(text: str) -> Any:
    """Parse one YAML document into positioned plain data. Raises YamlError."""
    if CParser is None or _ROUND_TRIP_ONLY.search(text):
        return _load_round_trip(text)
    composer = _Composer(text)
    try:
        node = composer.get_single_node()
        return None if node is None else _Converter(text).node(node)
    except (YAMLError, _RoundTrip, ValueError, IndexError):
        return _load_round_trip(text)
    finally:
        composer.dispose()


# An anchor (`&name`) where a node may start; `&&` and `2>&1` in scripts do not look like one.
ANCHOR = re.compile(r"(?:^|[ \t\[{,])&(?![&\s])[^\s\[\]{},]+", re.MULTILINE)
# An anchor or a `%` directive; explicit tags and merge keys are seen in the composed nodes. Over-matching
# (`&>` in a script) only sends a file to the slower path.
_ROUND_TRIP_ONLY = re.compile(f"{ANCHOR.pattern}|^%", re.MULTILINE)

_PLAIN, _QUOTED, _COLLECTION = "!plain", "!quoted", "!collection"


class _Composer(*((CParser, BaseResolver) if CParser else (BaseResolver,))):
    """libyaml's composer, with tags saying only how each node was written: typing is done by _plain."""

    def __init__(self, text: str) -> None:
        CParser.__init__(self, text)
        BaseResolver.__init__(self)

    def resolve(self, kind: type, value: Any, implicit: Any) -> str:
        if kind is not ScalarNode:
            return _COLLECTION
        if implicit[0]:
            return _PLAIN
        if implicit[1]:
            return _QUOTED
        raise _RoundTrip  # the non-specific tag `!`


# YAML 1.2 as ruamel.yaml resolves plain scalars (ruamel/yaml/resolver.py, `implicit_resolvers` for
# (1, 2)), tried in the same order: bool, float, int, null; timestamps are left to ruamel.
_BOOL = re.compile(r"true|True|TRUE|false|False|FALSE")
_FLOAT = re.compile(r"""[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN)""", re.X)
_INT = re.compile(r"[-+]?0b[0-1_]+|[-+]?0o?[0-7_]+|[-+]?[0-9_]+|[-+]?0x[0-9a-fA-F_]+")
_NULL = re.compile(r"~|null|Null|NULL|")
_TIMESTAMP = re.compile(r"""[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
    |[0-9][0-9][0-9][0-9]-[0-9][0-9]?-[0-9][0-9]?
    (?:[Tt]|[ \t]+)[0-9][0-9]?:[0-9][0-9]:[0-9][0-9](?:\.[0-9]*)?
    (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?""", re.X)
_BASES = {"0b": 2, "0x": 16, "0o": 8}


def _plain(value: str) -> Any:
    """The value of a plain scalar: what ruamel's round-trip constructor builds, as plain Python."""
    first = value[:1]
    if first in ("t", "T", "f", "F") and _BOOL.fullmatch(value):
        return first in ("t", "T")
    if first and first in "-+0123456789.":
        if _FLOAT.fullmatch(value):
            number = value.replace("_", "").lower()
            if number.lstrip("+-") == ".inf":
                return -math.inf if number[0] == "-" else math.inf
            return math.nan if number == ".nan" else float(number)
        if first != "." and _INT.fullmatch(value):
            digits = value.replace("_", "")
            sign = -1 if digits[0] == "-" else 1
            digits = digits.lstrip("+-")
            base = _BASES.get(digits[:2])
            return sign * (int(digits[2:], base) if base else int(digits))
        if _TIMESTAMP.fullmatch(value):
            raise _RoundTrip
    if first in ("~", "n", "N", "") and _NULL.fullmatch(value):
        return None
    if value in ("<<", "="):  # a merge key; ruamel's `value` tag
        raise _RoundTrip
    return value


def _str(node: ScalarNode, line: int, col: int) -> Str:
    s = Str(node.value)
    s.line, s.col = line, col
    s.plain = node.tag == _PLAIN
    s.block = node.style in ("|", ">")
    return s


_BLANKS = re.compile(r"(?:[ \t\r\n\ufeff]|#[^\n]*)*")


class _Converter:
    """libyaml's nodes as positioned data, positioned as ruamel positions them."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.line_starts: list[int] | None = None

    def value_mark(self, node: Any, flow: bool) -> tuple[int, int]:
        """Where ruamel says a mapping's value starts. An empty one (`key:`) in a block mapping is where
        the next token starts, after blanks and comments; libyaml puts it just after the colon. In a
        flow mapping (`{key: }`, never seen in a CI file) the two are the other way round."""
        line, col = node.start_mark.line, node.start_mark.column
        if not isinstance(node, ScalarNode) or node.tag != _PLAIN or node.value != "":
            return line, col
        if flow:
            raise _RoundTrip
        if self.line_starts is None:
            self.line_starts = [0] + [m.end() for m in re.finditer("\n", self.text)]
        end = _BLANKS.match(self.text, self.line_starts[line] + col).end()
        line += self.text.count("\n", self.line_starts[line] + col, end)
        return line, end - self.line_starts[line]

    def node(self, node: Any, line: int = 0, col: int = 0) -> Any:
        if isinstance(node, ScalarNode):
            if node.tag == _QUOTED:
                return _str(node, line, col)
            if node.tag != _PLAIN:
                raise _RoundTrip
            value = _plain(node.value)
            return _str(node, line, col) if isinstance(value, str) else value
        if node.tag != _COLLECTION:
            raise _RoundTrip
        if isinstance(node, SequenceNode):
            seq = Seq()
            seq.line, seq.col = line, col
            seq.item_pos = []
            for item in node.value:
                at = item.start_mark.line, item.start_mark.column
                seq.item_pos.append(at)
                seq.append(self.node(item, *at))
            return seq
        out = Map()
        out.line, out.col = line, col
        seen: set = set()
        for key_node, value_node in node.value:
            typed = _key(key_node)
            if typed in seen:  # a duplicate key: ruamel keeps the first (yamllint reports it)
                continue
            seen.add(typed)
            key = Key("null" if typed is None else str(typed))
            key.line, key.col = key_node.start_mark.line, key_node.start_mark.column
            key.value_pos = self.value_mark(value_node, node.flow_style)
            out[key] = self.node(value_node, *key.value_pos)
        return out


def _key(node: Any) -> Any:
    """A key as ruamel builds it (so that `1` and `"1"` stay two keys, as there); floats and collections
    as keys are left to ruamel, whose string forms of them this does not reproduce."""
    if not isinstance(node, ScalarNode) or node.tag not in (_PLAIN, _QUOTED):
        raise _RoundTrip
    if node.tag == _QUOTED:
        return node.value
    value = _plain(node.value)
    if isinstance(value, float) or (isinstance(value, int) and not isinstance(value, bool)
                                    and not node.value.lstrip("+-").isdigit()):
        raise _RoundTrip
    return value


def _load_round_trip(text: str) -> Any:
    """ruamel.yaml's round-trip loader, its data converted to positioned data."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.error import MarkedYAMLError
    from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString, ScalarString

    def convert(node: Any, line: int, col: int) -> Any:
        """ruamel's round-trip data as positioned plain data."""
        if isinstance(node, CommentedMap):
            out = Map()
            out.line, out.col = line, col
            known = node.lc.data or {}  # None under an explicit tag (`!Foo`)
            for k, v in node.items():
                kl, kc = node.lc.key(k) if k in known else (line, col)
                vl, vc = node.lc.value(k) if k in known else (kl, kc)
                key = Key(str(k)) if k is not None else Key("null")
                key.line, key.col, key.value_pos = kl, kc, (vl, vc)
                out[key] = convert(v, vl, vc)
            return out
        if isinstance(node, CommentedSeq):
            seq = Seq()
            seq.line, seq.col = line, col
            seq.item_pos = []
            known = node.lc.data or {}
            for i, v in enumerate(node):
                il, ic = node.lc.item(i) if i in known else (line, col)
                seq.item_pos.append((il, ic))
                seq.append(convert(v, il, ic))
            return seq
        if isinstance(node, str):
            s = Str(str(node))
            s.line, s.col = line, col
            s.plain = not isinstance(node, ScalarString)
            s.block = isinstance(node, (LiteralScalarString, FoldedScalarString))
            return s
        if isinstance(node, bool) or node is None:
            return node
        if isinstance(node, int):
            return int(node)
        if isinstance(node, float):
            return float(node)
        return node

    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = True  # yamllint reports duplicates; keep parsing
    try:
        node = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line, mark.column) if mark else (0, 0)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlError(line, col, message or str(exc)) from None
    except Exception as exc:
        raise YamlError(0, 0, str(exc)) from None
    return convert(node, 0, 0)


def position(obj: Any) -> tuple[int, int] | None:
    line = getattr(obj, "line", None)
    return None if line is None else (line, obj.col)


def key_of(mapping: dict, name: str) -> Key | None:
    """The stored Key object equal to `name`, which carries its position."""
    for k in mapping:
        if k == name:
            return k
    return None


def locate(data: Any, path: list | tuple) -> tuple[int, int]:
    """Best 0-based position for `path` inside `data`: the deepest key or item found on the way."""
    best = position(data) or (0, 0)
    node = data
    for step in path:
        if isinstance(node, dict):
            key = key_of(node, step) if isinstance(step, str) else None
            if key is None:
                break
            best = position(key) or best
            node = node[key]
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            item_pos = getattr(node, "item_pos", None)
            item = node[step]
            found = position(item) or _first_key_pos(item)
            if item_pos is not None:
                best = item_pos[step]
            elif found:
                best = found
            node = item
        else:
            break
    return best


def _first_key_pos(item: Any) -> tuple[int, int] | None:
    if isinstance(item, dict) and item:
        return position(next(iter(item)))
    return None


def to_plain(data: Any) -> Any:
    """The same data as builtin types only, for libraries that must not see Key/Str."""
    if isinstance(data, dict):
        return {str(k): to_plain(v) for k, v in data.items()}
    if isinstance(data, list):
        return [to_plain(v) for v in data]
    if isinstance(data, str):
        return str(data)
    return data
