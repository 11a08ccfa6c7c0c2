"""What makes checking a file fast must not change what is found: the data derived once from pinned
dependencies, and the YAML layer computed by a second process."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pytest

from mlops_gen.validate import engine, precomputed
from tests.validate.conftest import run_validate

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
