"""A finding: one problem at one place in one file, and how findings are printed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int  # 1-based
    col: int  # 1-based
    rule: str
    message: str = field(compare=True)
    severity: str = field(default=ERROR, compare=False)

    def text(self) -> str:
        prefix = "warning: " if self.severity == WARNING else ""
        return f"{self.path}:{self.line}:{self.col}: {self.rule}: {prefix}{self.message}"


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Sorted by path, line, column, rule; exact duplicates removed."""
    return sorted(set(findings))


def render_text(findings: list[Finding]) -> str:
    return "".join(f.text() + "\n" for f in findings)


def render_json(findings: list[Finding], files: list[str]) -> str:
    errors = sum(f.severity == ERROR for f in findings)
    doc = {
        "files": files,
        "summary": {"errors": errors, "warnings": len(findings) - errors},
        "findings": [asdict(f) for f in findings],
    }
    return json.dumps(doc, indent=2) + "\n"
