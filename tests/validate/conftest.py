"""Helpers for the validate tests: run the command in-process on files written to tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_gen.validate.command import validate

REPO = Path(__file__).resolve().parents[2]
# Real CI files by other people, with their sources (tests/corpus/real-ci/SOURCES.md): in the repository,
# so a plain clone tests against them.
CORPUS = REPO / "tests" / "corpus"


class Run:
    def __init__(self, result) -> None:
        self.code = result.exit_code
        self.output = result.stdout
        self.stderr = result.stderr
        try:
            self.doc = json.loads(result.stdout) if result.stdout.startswith("{") else None
        except json.JSONDecodeError:
            self.doc = None

    @property
    def findings(self) -> list[dict]:
        return self.doc["findings"] if self.doc else []

    def rules(self) -> set[str]:
        return {f["rule"] for f in self.findings}


def run_validate(*args: str) -> Run:
    return Run(CliRunner().invoke(validate, ["--format", "json", *map(str, args)], catch_exceptions=False))


@pytest.fixture
def check(tmp_path: Path):
    """check(name, text, *args) -> Run: write `text` to tmp_path/name and validate it."""

    def _check(name: str, text: str, *args: str) -> Run:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return run_validate(path, *args)

    return _check
