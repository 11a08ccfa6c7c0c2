"""A finding: one problem at one place in one file, and how findings are printed."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

ERROR = "error"  # the service rejects the file, or the run certainly fails
WARNING = "warning"  # accepted, but very likely wrong at run time
NOTE = "note"  # advice and style
SEVERITIES = (ERROR, WARNING, NOTE)


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int  # 1-based
    col: int  # 1-based
    rule: str
    message: str = field(compare=True)
    severity: str = field(default=ERROR, compare=False)

    def text(self) -> str:
        prefix = "" if self.severity == ERROR else f"{self.severity}: "
        return f"{self.path}:{self.line}:{self.col}: {self.rule}: {prefix}{self.message}"


def sort_findings(findings: list[Finding]) -> list[Finding]:
    """Sorted by path, line, column, rule; exact duplicates removed."""
    return sorted(set(findings))


def count(findings: list[Finding]) -> dict[str, int]:
    """{"errors": n, "warnings": n, "notes": n}"""
    return {f"{level}s": sum(f.severity == level for f in findings) for level in SEVERITIES}


def counts_against(finding: Finding, strict: bool) -> bool:
    """Errors always fail the command; warnings only with --strict; notes never."""
    return finding.severity == ERROR or (strict and finding.severity == WARNING)


def render_text(findings: list[Finding]) -> str:
    return "".join(f.text() + "\n" for f in findings)


def render_json(findings: list[Finding], files: list[str]) -> str:
    doc = {
        "files": files,
        "summary": count(findings),
        "findings": [asdict(f) for f in findings],
    }
    return json.dumps(doc, indent=2) + "\n"
