"""Real CI files the validator was never tuned on (tests/corpus/wild): valid ones pass, invalid ones are rejected."""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.validate.conftest import CORPUS, run_validate

WILD = CORPUS / "wild"
INDEX = json.loads((WILD / "INDEX.json").read_text(encoding="utf-8"))
VALID = [e for e in INDEX if e["valid"]]
INVALID = [e for e in INDEX if not e["valid"]]


def _ids(entries: list[dict]) -> list[str]:
    return [e["file"] for e in entries]


def test_the_index_matches_the_folder() -> None:
    listed = {e["file"] for e in INDEX}
    on_disk = {p.relative_to(WILD).as_posix() for p in WILD.rglob("*")
               if p.is_file() and p.name not in {"INDEX.json", "README.md"}}
    assert len(INDEX) == len(listed), "a file is listed twice"
    assert listed == on_disk
    assert len(listed) >= 60
    for entry in INDEX:
        assert entry["dialect"] in {"aws", "azure", "gcp"}
        assert entry["file"].startswith(entry["dialect"] + "/")
        assert len(entry["commit"]) == 40 and entry["licence"]
        assert hashlib.sha256((WILD / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], entry["file"]
        assert entry["valid"] == ("expect" not in entry), entry["file"]


def test_no_file_duplicates_the_tuned_corpus() -> None:
    tuned = [p for d in ("real-ci", "real-ci-invalid") for p in (CORPUS / d).rglob("*.y*ml")]
    assert {p.name for p in tuned}.isdisjoint({e["file"].rsplit("/", 1)[-1] for e in INDEX})
    assert {hashlib.sha256(p.read_bytes()).hexdigest() for p in tuned}.isdisjoint({e["sha256"] for e in INDEX})


@pytest.mark.parametrize("entry", VALID, ids=_ids(VALID))
def test_valid_files_pass(entry: dict) -> None:
    run = run_validate(WILD / entry["file"], "--dialect", entry["dialect"])
    errors = [f for f in run.findings if f["severity"] == "error"]
    assert run.code == 0 and not errors, run.output or run.stderr


@pytest.mark.parametrize("entry", INVALID, ids=_ids(INVALID))
def test_invalid_files_are_rejected_at_the_right_line(entry: dict) -> None:
    run = run_validate(WILD / entry["file"], "--dialect", entry["dialect"])
    rule, line = entry["expect"]["rule"], entry["expect"]["line"]
    assert run.code == 1
    assert any(f["rule"] == rule and f["line"] == line and f["severity"] == "error" for f in run.findings), run.output
