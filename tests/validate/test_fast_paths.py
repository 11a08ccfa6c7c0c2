"""What makes checking a file fast must not change what is found: the data derived once from pinned
dependencies, and the YAML layer computed by a second process."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_gen.validate import engine, precomputed, proofs
from tests.validate.cases import CASES
from tests.validate.conftest import CORPUS, run_validate

FILES = {
    "buildspec.yml": "version: 0.2\nphases:\n  build:\n    commands:\n      - chmod 0755 x\n      - echo ok\n",
    # yamllint's findings: a duplicate key, an octal value
    "azure-pipelines.yml": "trigger: [main]\ntrigger: [dev]\npool:\n  vmImage: ubuntu-latest\nsteps:\n"
                           "  - script: echo ok\n    env:\n      MODE: 0644\n  - task: CopyFile@2\n",
    "cloudbuild.yaml": "steps:\n  - name: python\n    args: [echo, $_MISSING]\nsubstitutions:\n  _N: [1]\n",
    "broken-cloudbuild.yaml": "steps:\n  - name: [unclosed\n",
    "hostile-buildspec.yml": "version: 0.2\nphases: \x00\n",
}


def _write(tmp_path: Path) -> list[Path]:
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return [tmp_path / name for name in FILES]


def test_the_shipped_azure_schema_is_the_adapted_vendored_one() -> None:
    shipped = (precomputed.DATA / precomputed.AZURE_SCHEMA).read_text(encoding="utf-8")
    assert shipped == precomputed.azure_schema_text(), \
        "out of date: run `python -m mlops_gen.validate.precomputed`"


def test_the_shipped_cloud_build_descriptor_is_google_cloud_builds() -> None:
    shipped = (precomputed.DATA / precomputed.CLOUDBUILD_DESCRIPTOR).read_bytes()
    assert shipped == precomputed.cloudbuild_descriptor_bytes(), \
        "out of date: run `python -m mlops_gen.validate.precomputed`"


@pytest.mark.parametrize("name", proofs.SCHEMAS)
def test_the_shipped_schema_proofs_are_fastjsonschemas_compilation_of_the_schemas(name: str) -> None:
    shipped = (precomputed.PROOFS / f"{name}.py").read_text(encoding="utf-8")
    assert shipped == precomputed.proof_source(name), "out of date: run `python -m mlops_gen.validate.precomputed`"


def _cases_folder(tmp_path: Path) -> Path:
    """Every rule's failing and passing example, each in a folder of its own (their names repeat)."""
    for i, (_rule, name, bad, good, _line) in enumerate(CASES):
        for kind, text in (("bad", bad), ("good", good)):
            path = tmp_path / "cases" / f"{i}-{kind}" / name
            path.parent.mkdir(parents=True)
            path.write_text(text, encoding="utf-8")
    return tmp_path / "cases"


def test_the_schema_proofs_change_no_finding(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CI files (valid, invalid, wild) and every rule's examples: the same findings, in the same
    words at the same lines, as with jsonschema alone; and the proofs were used, on valid and invalid files."""
    folders = [CORPUS / "real-ci", CORPUS / "real-ci-invalid", CORPUS / "wild", _cases_folder(tmp_path)]
    calls: list[tuple[str, bool]] = []
    accepts = proofs.accepts

    def counted(name, instance):
        calls.append((name, accepts(name, instance)))
        return calls[-1][1]

    # not forked: the workers' calls are counted here too
    monkeypatch.setattr(engine, "_cpus", lambda: 1)
    monkeypatch.setattr(proofs, "accepts", counted)
    fast = [run_validate(folder) for folder in folders]
    monkeypatch.setattr(proofs, "accepts", lambda name, instance: False)
    plain = [run_validate(folder) for folder in folders]
    assert [(r.code, r.output, r.stderr) for r in fast] == [(r.code, r.output, r.stderr) for r in plain]
    assert {"bs-schema", "bs-unknown-key", "gcb-schema", "gcb-unknown-key"} <= set().union(*(r.rules() for r in fast))
    assert {(name, verdict) for name, verdict in calls} == {(n, v) for n in proofs.SCHEMAS for v in (True, False)}
    assert sum(verdict for _, verdict in calls) >= 50


def test_a_valid_file_does_not_import_jsonschema(tmp_path: Path) -> None:
    """What pre-commit pays on every commit: a valid buildspec or Cloud Build file is checked without it."""
    good = {name: text for rule, name, _bad, text, _line in CASES if rule in ("bs-schema", "gcb-schema")}
    for name, text in good.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    code = ("import sys; from mlops_gen.validate.command import validate\n"
            "try:\n    validate.main(sys.argv[1:], standalone_mode=False)\n"
            "finally:\n    print(sorted(m for m in sys.modules if m.split('.')[0] == 'jsonschema'))")
    done = subprocess.run([sys.executable, "-c", code, "--strict", *good], cwd=tmp_path, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr
    assert "2 file(s) checked: 0 error(s)" in done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture
def parent_lints(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files this process lints itself (the forked process's calls are not seen here)."""
    calls: list[str] = []
    lint = engine.yamllint_findings

    def counted(path: str, text: str, parsed: bool):
        calls.append(Path(path).name)
        return lint(path, text, parsed)

    monkeypatch.setattr(engine, "yamllint_findings", counted)
    return calls


def test_the_yaml_layer_in_a_second_process_finds_the_same(tmp_path: Path, monkeypatch, parent_lints) -> None:
    paths = _write(tmp_path)
    monkeypatch.setattr(engine, "_cpus", lambda: 1)
    alone = run_validate(*paths)
    assert len(parent_lints) == 4  # all but the hostile file, refused before any parse
    parent_lints.clear()
    monkeypatch.setattr(engine, "_cpus", lambda: 2)
    helped = run_validate(*paths)
    assert parent_lints == ["broken-cloudbuild.yaml"]  # a file that does not parse is linted here
    assert (helped.code, helped.output, helped.stderr) == (alone.code, alone.output, alone.stderr)
    assert {"yaml-duplicate-key", "yaml-octal", "yaml-syntax", "az-unknown-task", "gcb-proto"} <= alone.rules()


def test_a_failing_second_process_changes_nothing(tmp_path: Path, monkeypatch, parent_lints) -> None:
    paths = _write(tmp_path)
    monkeypatch.setattr(engine, "_cpus", lambda: 1)
    alone = run_validate(*paths)
    monkeypatch.setattr(engine, "_cpus", lambda: 2)
    monkeypatch.setattr(engine, "_lint_in_child", lambda *args: os._exit(1))
    parent_lints.clear()
    failed = run_validate(*paths)
    assert len(parent_lints) == 4
    assert (failed.code, failed.output, failed.stderr) == (alone.code, alone.output, alone.stderr)


def test_the_collector_threshold_is_restored(tmp_path: Path) -> None:
    before = gc.get_threshold()
    run_validate(*_write(tmp_path))
    assert gc.get_threshold() == before
