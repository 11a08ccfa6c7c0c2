"""Structure-aware 3-way merge of YAML files (CI pipelines, mlops.yaml, ...).

Used only where copier's textual merge left conflict markers. The user's document (U) is loaded
with ruamel.yaml round-trip and the template's changes (O -> N) are replayed onto it key by key
and list item by list item, so the user's comments and layout stay as they were. It gives up
(returns None, and the textual conflict stands) when:

- U does not round-trip byte for byte with any usual indentation (we would reformat the file);
- both sides changed the same scalar, the same key, or touching list items;
- a comment the user wrote would not survive.

Lists whose items all carry a unique identity (`id`, `displayName`, `name`, `job`, `stage`, ...)
are merged by identity; other lists by a 3-way merge of their items. Where both sides only added
items at the same place (e.g. a step appended to the same phase), both are kept: the user's
first, then the template's.
"""

from __future__ import annotations

import datetime
import difflib
import itertools
import json
import re
from io import StringIO
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

# (mapping, sequence, offset) indentations tried, most common first.
INDENTS = ((2, 2, 0), (2, 4, 2), (4, 4, 2), (4, 4, 0), (4, 6, 4), (2, 4, 0), (3, 3, 0))
ID_KEYS = ("id", "displayName", "name", "job", "stage", "deployment", "template", "task", "script", "bash",
           "pwsh", "powershell", "checkout", "key")


class Conflict(Exception):
    """The two changes touch the same thing."""


def _yaml(indent: tuple[int, int, int], explicit_start: bool) -> YAML:
    y = YAML(typ="rt")
    y.preserve_quotes = True
    y.width = 4096
    y.indent(mapping=indent[0], sequence=indent[1], offset=indent[2])
    y.explicit_start = explicit_start
    return y


def _dump(y: YAML, doc: Any) -> str:
    buf = StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def _fast_load(text: str) -> Any:
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _plain(value: Any) -> Any:
    """Comparable data: comments and styles dropped, bools kept apart from ints."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, str):
        return str(value)
    if value is None or isinstance(value, int | float):
        return value
    if isinstance(value, datetime.date):
        return ("date", value.isoformat())
    return ("other", repr(value))


def _eq(a: Any, b: Any) -> bool:
    return _plain(a) == _plain(b)


_COMMENT = re.compile(r"(?:^|\s)(#.*)$")


def _comments(text: str) -> list[str]:
    return [m.group(1).strip() for line in text.splitlines() if (m := _COMMENT.search(line))]


def _guess_indent(text: str) -> tuple[int, int, int] | None:
    """(mapping, sequence, offset) as written in `text`, from its first nested block."""
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    mapping = sequence = offset = None
    for parent, child in itertools.pairwise(lines):
        p_col = len(parent) - len(parent.lstrip())
        c_col = len(child) - len(child.lstrip())
        if not parent.rstrip().endswith(":") or c_col < p_col:
            continue
        body = child.lstrip()
        if body.startswith("- ") and sequence is None:
            offset = c_col - p_col
            sequence = offset + len(body) - len(body[1:].lstrip())
        elif not body.startswith("-") and c_col > p_col and mapping is None:
            mapping = c_col - p_col
        if mapping is not None and sequence is not None:
            break
    if mapping is None and sequence is None:
        return None
    mapping = mapping or 2
    return (mapping, sequence if sequence is not None else mapping, offset or 0)


def merge_yaml(old: bytes, user: bytes, new: bytes) -> bytes | None:
    """U with N's changes since O replayed structurally, or None when that is not safe.

    Top-level blocks (a column-0 key and everything up to the next one) that differ on one side
    only are taken from that side as text; only blocks changed on both sides go through the
    ruamel.yaml round-trip, which is slow (pure Python) on a 400-line pipeline.
    """
    try:
        o_text, u_text, n_text = (b.decode("utf-8") for b in (old, user, new))
    except UnicodeDecodeError:
        return None
    split = [_blocks(t) for t in (o_text, u_text, n_text)]
    if any(b is None for b in split):
        return _merge_documents(o_text, u_text, n_text)
    (o_head, o_blocks), (u_head, u_blocks), (n_head, n_blocks) = split  # type: ignore[misc]
    head = _pick(o_head, u_head, n_head)
    if head is None:
        return _merge_documents(o_text, u_text, n_text)
    result = dict(u_blocks)                      # key -> block text, in the user's order
    order = list(u_blocks)
    for key, o_block in o_blocks.items():
        if key in u_blocks and key in n_blocks:
            picked = _pick(o_block, u_blocks[key], n_blocks[key])
            if picked is None:
                picked = _merge_documents(o_block, u_blocks[key], n_blocks[key])
                if picked is None:
                    return None
            result[key] = picked
        elif key in u_blocks:                    # removed by the template
            if u_blocks[key] != o_block:
                return None
            order.remove(key)
        elif key in n_blocks and n_blocks[key] != o_block:
            return None                          # removed by the user, changed by the template
    n_keys = list(n_blocks)
    for index, key in enumerate(n_keys):
        if key in o_blocks:
            continue
        if key in u_blocks:
            if u_blocks[key] != n_blocks[key]:
                return None
            continue
        before = [k for k in n_keys[:index] if k in order]
        order.insert(order.index(before[-1]) + 1 if before else 0, key)
        result[key] = n_blocks[key]
    pieces = [head] + [result[k] if result[k].endswith("\n") else result[k] + "\n" for k in order]
    text = "".join(pieces)
    if not u_text.endswith("\n"):
        text = text[:-1]
    try:
        merged = _fast_load(text)
        expected = {k: v for k in order for k, v in _fast_load(result[k]).items()}
    except yaml.YAMLError:
        return None
    if _plain(merged) != _plain(expected):
        return None
    return text.encode("utf-8")


_TOP_KEY = re.compile(r"""^("[^"]*"|'[^']*'|[^\s#\-?:\[\]{}&*!|>'"%@`][^#]*?)\s*:(?:\s|$)""")


def _blocks(text: str) -> tuple[str, dict[str, str]] | None:
    """(header, {key: block}) for a block mapping at column 0, None for anything else.

    A block is a key line and every following line up to the next column-0 key line; the header
    is what precedes the first key (comments, `---`)."""
    head: list[str] = []
    blocks: dict[str, list[str]] = {}
    current = head
    for line in text.splitlines(keepends=True):
        if line[:1] in ("", " ", "\t", "#", "\n", "\r"):
            current.append(line)
        elif line.startswith(("---", "%")) and not blocks:
            head.append(line)
        elif (match := _TOP_KEY.match(line)) and match.group(1) not in blocks:
            current = blocks[match.group(1)] = [line]
        else:
            return None                          # flow style, a second document, a repeated key...
    if not blocks:
        return None
    return "".join(head), {k: "".join(v) for k, v in blocks.items()}


def _pick(o: str, u: str, n: str) -> str | None:
    """Text changed on one side only (or the same on both), else None."""
    if u == o:
        return n
    if n == o or u == n:
        return u
    return None


def _merge_documents(o_text: str, u_text: str, n_text: str) -> str | None:
    explicit = u_text.lstrip().startswith("---")
    loader = _yaml(INDENTS[0], explicit)
    try:
        # O is only compared with, never written: libyaml reads it (ruamel's round-trip loader is
        # pure Python and the slow part). Where YAML 1.1 and 1.2 read a scalar differently the
        # comparison fails closed (a conflict), never open.
        o_doc = _fast_load(o_text)
        u_doc, n_doc = loader.load(u_text), loader.load(n_text)
    except Exception:
        return None
    if not (isinstance(o_doc, dict) and isinstance(u_doc, CommentedMap) and isinstance(n_doc, CommentedMap)):
        return None
    guess = _guess_indent(u_text)
    for indent in dict.fromkeys(((guess,) if guess else ()) + INDENTS):
        y = _yaml(indent, explicit)
        try:
            if _dump(y, u_doc) != u_text:
                continue
            merged = _merge(o_doc, u_doc, n_doc)
            expected = _plain(merged)
            text = _dump(y, merged)
        except Exception:
            return None
        if _plain(_fast_load(text)) != expected:
            return None
        own_comments = set(_comments(u_text)) - set(_comments(o_text))
        if not own_comments <= set(_comments(text)):
            return None
        return text
    return None


def _merge(o: Any, u: Any, n: Any) -> Any:
    """The merged value; containers of U are edited in place so their comments stay."""
    if isinstance(u, dict) and isinstance(o, dict) and isinstance(n, dict):
        _merge_map(o, u, n)
        return u
    if isinstance(u, list) and isinstance(o, list) and isinstance(n, list):
        _merge_seq(o, u, n)
        return u
    if _eq(u, o):
        return n
    if _eq(n, o) or _eq(u, n):
        return u
    raise Conflict


def _merge_map(o: CommentedMap, u: CommentedMap, n: CommentedMap) -> None:
    for key in list(o):
        if key in u and key in n:
            merged = _merge(o[key], u[key], n[key])
            if merged is not u[key]:
                u[key] = merged
        elif key in u:                      # the template removed it
            if not _eq(u[key], o[key]):
                raise Conflict
            del u[key]
        elif key in n and not _eq(n[key], o[key]):
            raise Conflict                  # the user removed what the template changed
    n_keys = list(n)
    for index, key in enumerate(n_keys):
        if key in o:
            continue
        if key in u:
            if not _eq(u[key], n[key]):
                raise Conflict
            continue
        before = [k for k in n_keys[:index] if k in u]
        position = list(u).index(before[-1]) + 1 if before else 0
        at_end = position == len(u)
        u.insert(position, key, n[key])
        if key in getattr(n, "ca", None).items:
            u.ca.items[key] = n.ca.items[key]
        if at_end and before and not isinstance(n[key], dict | list):
            # a blank line or comment that closed the map moves down with its end
            previous = u.ca.items.get(before[-1])
            if previous and len(previous) > 2 and previous[2] is not None and key not in n.ca.items:
                u.ca.items[key] = [None, None, previous[2], None]
                previous[2] = None


def _ident(item: Any) -> tuple[str, str] | None:
    if isinstance(item, dict):
        for key in ID_KEYS:
            value = item.get(key)
            if isinstance(value, str | int) and not isinstance(value, bool):
                return key, str(value)
    return None


def _keyed(*seqs: list) -> list[list] | None:
    ids = [[_ident(item) for item in seq] for seq in seqs]
    if all(None not in seq_ids and len(set(seq_ids)) == len(seq_ids) for seq_ids in ids):
        return ids
    return None


def _merge_seq(o: list, u: list, n: list) -> None:
    ids = _keyed(o, u, n)
    if ids is not None and o:
        _merge_seq_keyed(o, u, n, *ids)
    else:
        _merge_seq_positional(o, u, n)


def _merge_seq_keyed(o: list, u: CommentedSeq, n: list, o_ids: list, u_ids: list, n_ids: list) -> None:
    common = [i for i in o_ids if i in n_ids]
    if common != [i for i in n_ids if i in o_ids]:
        raise Conflict                      # the template reordered items
    for ident, o_item in zip(o_ids, o, strict=True):
        if ident in u_ids and ident in n_ids:
            index = u_ids.index(ident)
            merged = _merge(o_item, u[index], n[n_ids.index(ident)])
            if merged is not u[index]:
                u[index] = merged
        elif ident in u_ids:
            index = u_ids.index(ident)
            if not _eq(u[index], o_item):
                raise Conflict
            del u[index]
            del u_ids[index]
        elif ident in n_ids and not _eq(n[n_ids.index(ident)], o_item):
            raise Conflict
    for index, ident in enumerate(n_ids):
        if ident in o_ids:
            continue
        if ident in u_ids:
            if not _eq(u[u_ids.index(ident)], n[index]):
                raise Conflict
            continue
        before = [i for i in n_ids[:index] if i in u_ids]
        after = [i for i in n_ids[index + 1:] if i in u_ids]
        position = (u_ids.index(before[-1]) + 1 if before else u_ids.index(after[0]) if after else len(u))
        while before and position < len(u) and u_ids[position] not in o_ids and u_ids[position] not in n_ids:
            position += 1                   # after the items the user added at the same place
        u.insert(position, n[index])
        u_ids.insert(position, ident)


def _hunks(a: list[str], b: list[str]) -> list[tuple[int, int, int, int]]:
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    return [(i1, i2, j1, j2) for tag, i1, i2, j1, j2 in matcher.get_opcodes() if tag != "equal"]


def _merge_seq_positional(o: list, u: CommentedSeq, n: list) -> None:
    def tokens(seq: list) -> list[str]:
        return [json.dumps(_plain(x), sort_keys=True, default=str) for x in seq]

    to, tu, tn = tokens(o), tokens(u), tokens(n)
    user_hunks, new_hunks = _hunks(to, tu), _hunks(to, tn)
    o_to_u: dict[int, int] = {}
    for i, j, size in difflib.SequenceMatcher(None, to, tu, autojunk=False).get_matching_blocks():
        o_to_u.update({i + k: j + k for k in range(size)})
    splices = []
    for i1, i2, j1, j2 in new_hunks:
        touching = [g for g in user_hunks if i1 <= g[1] and g[0] <= i2]
        if touching:
            g = touching[0]
            if len(touching) == 1 and (g[0], g[1]) == (i1, i2) and tu[g[2]:g[3]] == tn[j1:j2]:
                continue                    # the same change on both sides
            if len(touching) == 1 and g[0] == g[1] == i1 == i2:
                # both only inserted items at the same place: the user's first, then the template's
                splices.append((g[3], 0, list(n[j1:j2])))
                continue
            if len(touching) == 1 and (g[0], g[1]) == (i1, i2) and i2 - i1 == 1 == j2 - j1 == g[3] - g[2]:
                merged = _merge(o[i1], u[g[2]], n[j1])
                if merged is not u[g[2]]:
                    u[g[2]] = merged
                continue
            raise Conflict
        start = o_to_u[i1] if i1 < len(o) else len(u)
        splices.append((start, i2 - i1, list(n[j1:j2])))
    for start, length, items in sorted(splices, reverse=True):
        for _ in range(length):
            del u[start]
        for offset, item in enumerate(items):
            u.insert(start + offset, item)
