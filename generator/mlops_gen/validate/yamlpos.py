"""YAML with positions: ruamel.yaml's round-trip loader, converted to plain Python data whose
mapping keys and string values remember their line and column.

Plain dicts, lists and scalars mean every consumer (jsonschema, protobuf, check-jsonschema's
transforms) sees ordinary data, while `locate()` can still turn a path into a position. Keys are
`Key` (a str) and strings are `Str` (a str), so they survive transforms that rebuild containers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.scalarstring import FoldedScalarString, LiteralScalarString, ScalarString


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


def _new_loader() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.allow_duplicate_keys = True  # yamllint reports duplicates; keep parsing
    return yaml


def load(text: str) -> Any:
    """Parse one YAML document into positioned plain data. Raises YamlError."""
    try:
        node = _new_loader().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line, mark.column) if mark else (0, 0)
        message = " ".join(str(p) for p in (exc.context, exc.problem) if p)
        raise YamlError(line, col, message or str(exc)) from None
    except Exception as exc:
        raise YamlError(0, 0, str(exc)) from None
    return convert(node, 0, 0)


def convert(node: Any, line: int, col: int) -> Any:
    if isinstance(node, CommentedMap):
        out = Map()
        out.line, out.col = line, col
        for k, v in node.items():
            kl, kc = node.lc.key(k) if k in node.lc.data else (line, col)
            vl, vc = node.lc.value(k) if k in node.lc.data else (kl, kc)
            key = Key(str(k)) if k is not None else Key("null")
            key.line, key.col, key.value_pos = kl, kc, (vl, vc)
            out[key] = convert(v, vl, vc)
        return out
    if isinstance(node, CommentedSeq):
        seq = Seq()
        seq.line, seq.col = line, col
        seq.item_pos = []
        for i, v in enumerate(node):
            il, ic = node.lc.item(i) if i in node.lc.data else (line, col)
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
