"""Secret values never appear in clear: not on the terminal, in logs, in the report or artifacts.

CodeBuild, Azure Pipelines and Cloud Build all mask the values of secrets in build output; a
local run does the same for every value of the --secrets file and every variable a step marks
secret at run time (`##vso[task.setvariable ...;issecret=true]`). Values shorter than
MIN_LENGTH are not masked: replacing every "1" or "ab" would make the output unreadable.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

MASK = "***"
MIN_LENGTH = 3


def secret_values(tree: Any) -> set[str]:
    """Every leaf value of a --secrets document."""
    if isinstance(tree, dict):
        return set().union(*(secret_values(v) for v in tree.values())) if tree else set()
    if isinstance(tree, list):
        return set().union(*(secret_values(v) for v in tree)) if tree else set()
    return set() if tree is None or isinstance(tree, bool) else {str(tree)}


class Masker:
    def __init__(self, values: set[str] = frozenset()) -> None:
        self._values: set[str] = set()
        self._pattern: re.Pattern | None = None
        for value in values:
            self.add(value)

    def add(self, value: str) -> None:
        forms = {value, *value.splitlines(), json.dumps(value)[1:-1]}  # JSON-escaped, as in the report
        new = {v.strip() for v in forms if len(v.strip()) >= MIN_LENGTH} - self._values
        if new:
            self._values |= new
            ordered = sorted(self._values, key=len, reverse=True)  # longest first: no partial leaks
            self._pattern = re.compile("|".join(map(re.escape, ordered)))

    def __call__(self, text: str) -> str:
        return text if self._pattern is None or not text else self._pattern.sub(MASK, text)

    def file(self, path: Path) -> None:
        """Mask a text file in place (binary files are left as they are)."""
        if self._pattern is None:
            return
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            return
        masked = self(text)
        if masked != text:
            path.write_text(masked, encoding="utf-8")


class MaskedLog:
    """A step log: created 0600 (it holds whatever the step printed), every write masked."""

    def __init__(self, path: str | Path, mask: Masker, mode: str = "a") -> None:
        flags = os.O_WRONLY | os.O_CREAT | (os.O_APPEND if mode == "a" else os.O_TRUNC)
        self._handle = open(os.open(path, flags, 0o600), "w", encoding="utf-8", errors="replace")
        self._mask = mask

    def write(self, text: str) -> None:
        self._handle.write(self._mask(text))

    def flush(self) -> None:
        self._handle.flush()

    def __enter__(self) -> MaskedLog:
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()
