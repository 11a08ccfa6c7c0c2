"""The tuned corpus (real-ci, real-ci-invalid) is listed in real-ci/INDEX.json with source, licence and SHA-256."""

from __future__ import annotations

import hashlib
import json
import re

from tests.validate.conftest import CORPUS

INDEX = json.loads((CORPUS / "real-ci" / "INDEX.json").read_text(encoding="utf-8"))
NOT_CI = {"INDEX.json", "SOURCES.md", "VERDICTS.md"}


def test_every_corpus_file_is_listed_once() -> None:
    listed = [e["file"] for e in INDEX]
    on_disk = {p.relative_to(CORPUS).as_posix() for d in ("real-ci", "real-ci-invalid")
               for p in (CORPUS / d).rglob("*") if p.is_file() and p.name not in NOT_CI}
    assert len(listed) == len(set(listed)), "a file is listed twice"
    assert set(listed) == on_disk
    assert len(listed) >= 50


def test_every_entry_has_its_source_licence_and_bytes() -> None:
    for entry in INDEX:
        folder, dialect, name = entry["file"].split("/")
        assert folder in {"real-ci", "real-ci-invalid"} and dialect == entry["dialect"] in {"aws", "azure", "gcp"}
        assert entry["valid"] == (folder == "real-ci"), entry["file"]
        assert name.startswith(entry["repo"].replace("/", "__") + "__"), entry["file"]
        assert entry["path"] and re.fullmatch(r"[0-9a-f]{40}", entry["commit"]), entry["file"]
        assert entry["licence"] and entry["features"], entry["file"]
        assert hashlib.sha256((CORPUS / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], entry["file"]
