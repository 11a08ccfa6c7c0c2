"""What a dialect checker gets: the file, its data, the options, and a way to report."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any

from mlops_gen.validate.findings import Finding
from mlops_gen.validate.rules import severity_of
from mlops_gen.validate.yamlpos import locate, position

MAX_BYTES = 2_000_000  # the largest real CI files are ~200 KB; --max-bytes raises it


@dataclass(frozen=True)
class Options:
    allow_tasks: tuple[str, ...] = ()  # fnmatch patterns, case-insensitive
    disable: frozenset[str] = frozenset()
    strict: bool = False
    infra: bool = True
    max_bytes: int = MAX_BYTES

    def task_allowed(self, name: str) -> bool:
        low = name.lower()
        return any(fnmatch.fnmatchcase(low, p.lower()) for p in self.allow_tasks)


@dataclass
class Context:
    path: str
    text: str
    data: Any
    options: Options = field(default_factory=Options)
    findings: list[Finding] = field(default_factory=list)

    def report(self, rule: str, where: Any, message: str) -> None:
        """`where`: a 0-based (line, col), a positioned object (Key/Str/Map/Seq), or a path."""
        if rule in self.options.disable:
            return
        if isinstance(where, tuple) and len(where) == 2 and all(isinstance(x, int) for x in where):
            pos = where
        else:
            pos = position(where)
            if pos is None:
                pos = locate(self.data, where) if isinstance(where, (list, tuple)) else (0, 0)
        self.findings.append(Finding(self.path, pos[0] + 1, pos[1] + 1, rule, message, severity_of(rule)))
