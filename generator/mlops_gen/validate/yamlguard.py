"""Refuse YAML that would make the validator slow or huge before anything parses it for real.

Three kinds of hostile input, each found by a linear pass that never builds the tree:
- characters YAML forbids (NUL and other C0/C1 controls, surrogates, U+FFFE/U+FFFF), which
  yamllint and ruamel report with a traceback or a byte offset;
- nesting deeper than any CI file needs (a recursive composer takes minutes on 10,000 levels);
- aliases whose expansion is larger than a budget (a 450-byte "billion laughs" file expands to
  gigabytes, because every consumer walks the aliased node once per reference).

The alias budget counts nodes as if every alias were expanded, using the size of each anchored
node once it is closed, so it costs one pass over the parser's events however deep the nesting.
"""

from __future__ import annotations

import re

from mlops_gen.validate.yamlpos import ANCHOR, YamlError

MAX_DEPTH = 200  # real CI files nest < 30 levels; ruamel's composer recurses per level
MAX_NODES = 100_000  # nodes after expanding aliases; the largest real CI files have < 20,000

# YAML 1.2 §5.1: printable characters are TAB, LF, CR, x20-x7E, x85, xA0-xD7FF, xE000-xFFFD, x10000+.
# Written as the complement (the same set): the negated class over all of Unicode takes ~9 ms to compile,
# which every run paid at import.
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")
_DEEP_INDENT = re.compile(f"^ {{{MAX_DEPTH}}}", re.MULTILINE)  # block nesting needs one column a level
_FLOW_CHARS = re.compile(r"[\[\]{}'\"#]")
# An anchor (yamlpos.ANCHOR) and an alias (`*name`) where a node may start: both are needed for any
# expansion. Globs (`release/*`) and `**` do not look like an alias, so most files skip the event pass.
_ALIAS = re.compile(r"(?:^|[ \t\[{,])\*(?![*\s])[^\s\[\]{},]+", re.MULTILINE)


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset)
    return line, offset - (text.rfind("\n", 0, offset) + 1)


def forbidden_character(text: str) -> YamlError | None:
    match = _FORBIDDEN.search(text)
    if match is None:
        return None
    line, col = _line_col(text, match.start())
    code = ord(match.group(0))
    name = "NUL" if code == 0 else f"U+{code:04X}"
    return YamlError(line, col, f"the character {name} is not allowed in YAML (control characters other than "
                                "tab and line breaks are forbidden); remove it or write it as an escape in a "
                                "double-quoted string")


def _opens_flow(text: str, at: int, depth: int) -> bool:
    """Whether the bracket at `at` starts a flow collection rather than sitting inside a scalar:
    it must follow a key's colon, a list dash, a line start, or (inside flow) a comma or bracket."""
    i = at - 1
    blank = " \t\r\n" if depth else " \t"
    while i >= 0 and text[i] in blank:
        i -= 1
    return i < 0 or text[i] in (":-?[{,\n" if depth else ":-?\n")


def _deep_flow(text: str, max_depth: int) -> YamlError | None:
    """Flow brackets nested deeper than `max_depth`, found by a scan of bracket and quote characters.

    Done by hand because ruamel's scanner looks ahead over every open bracket (quadratic: 10,000
    levels take seconds before the first event)."""
    depth, quote, comment_line = 0, "", -1
    for match in _FLOW_CHARS.finditer(text):
        char, at = match.group(0), match.start()
        if comment_line >= 0:
            if text.rfind("\n", 0, at) < comment_line:
                continue
            comment_line = -1
        if quote:
            if char == quote:
                quote = ""
        elif char == "#" and (at == 0 or text[at - 1] in " \t\n"):
            comment_line = at
        elif char in "'\"":
            quote = char if depth else ""  # quotes only delimit scalars inside flow collections here
        elif char in "[{":
            if not _opens_flow(text, at, depth):
                continue
            depth += 1
            if depth > max_depth:
                line, col = _line_col(text, at)
                return YamlError(line, col, f"brackets nested deeper than {max_depth} levels; no CI file needs "
                                            "that, and parsing it would take minutes")
        elif depth:
            depth -= 1
    return None


def too_big(text: str, max_depth: int = MAX_DEPTH, max_nodes: int = MAX_NODES) -> YamlError | None:
    """Deep nesting or an alias expansion over budget, with the position where the limit was crossed.

    Syntax errors are left to the real parse, which reports them with yamllint's wording."""
    deep = _deep_flow(text, max_depth)
    if deep is not None:
        return deep
    if not (ANCHOR.search(text) and _ALIAS.search(text)) and not _DEEP_INDENT.search(text):
        return None
    from ruamel.yaml import YAML
    from ruamel.yaml.error import YAMLError
    from ruamel.yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        MappingStartEvent,
        ScalarEvent,
        SequenceStartEvent,
    )

    sizes: dict[str, int] = {}  # anchor -> expanded size of its node
    stack: list[list] = []  # open collections: [anchor, expanded size so far]
    total = 0  # nodes in the whole document with every alias expanded
    try:
        for event in YAML(typ="rt").parse(text):
            if isinstance(event, (MappingStartEvent, SequenceStartEvent)):
                if len(stack) >= max_depth:
                    mark = event.start_mark
                    return YamlError(mark.line, mark.column,
                                     f"nesting deeper than {max_depth} levels; no CI file needs that, "
                                     "and parsing it would take minutes")
                stack.append([event.anchor, 1])
                total += 1
                continue
            if isinstance(event, CollectionEndEvent) and stack:
                anchor, grown = stack.pop()
                if anchor:
                    sizes[anchor] = grown
            elif isinstance(event, ScalarEvent):
                grown = 1
                total += 1
                if event.anchor:
                    sizes[event.anchor] = 1
            elif isinstance(event, AliasEvent):
                grown = sizes.get(event.anchor, 1)
                total += grown
                if total > max_nodes:
                    mark = event.start_mark
                    return YamlError(mark.line, mark.column,
                                     f"the alias *{event.anchor} takes the expanded file over {max_nodes:,} nodes; "
                                     "nested aliases that multiply like this (a 'billion laughs' file) are refused")
            else:
                continue
            if stack:
                stack[-1][1] += grown
    except (YAMLError, RecursionError):
        return None
    return None
