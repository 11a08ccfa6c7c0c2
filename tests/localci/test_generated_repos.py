"""End to end: a generated repository's own CI file, run locally with the local target.

Slow (installs the generated project's dependencies into the cached per-provider environment
and runs every stage).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_gen.localci.command import CI_FILES, ci
from mlops_gen.selfwheel import find_links_env

pytestmark = pytest.mark.slow
STAGES = ("validate", "train", "gate", "deploy", "smoke")


def _generated(tmp_path, rendered, cloud: str, *, whole_suite: bool = True, **answers):
    """A committed copy of the render. whole_suite=False keeps one test module of the generated suite: for
    tests of a later step (the gate, a trigger), whose test step still runs, but whose suite passing on
    every CI file is test_generated_ci_file_passes_end_to_end's subject, not theirs (~2 min each)."""
    repo = Path(shutil.copytree(rendered(clouds=[cloud], **answers), tmp_path / f"repo-{cloud}"))
    assert any((repo / name).exists() for name in CI_FILES[cloud]), f"no {CI_FILES[cloud][0]} rendered"
    if not whole_suite:
        for module in (repo / "tests").glob("test_*.py"):
            if module.name != "test_config.py":
                module.unlink()
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t",
                    "commit", "-q", "-m", "generated"], check=True)
    return repo


def _run(repo, cloud, *args):
    # The CI file installs the validator as mlops-gen==<version>: this checkout's wheel stands in for the index.
    out = CliRunner().invoke(ci, ["run", "--provider", cloud, "--repo", str(repo), *args], env=find_links_env({}),
                             catch_exceptions=False)
    report = json.loads((repo / ".local-ci" / cloud / "report.json").read_text())
    return out, report


def _text(step: dict) -> str:
    return f"{step['name']} {step['detail'].get('command', '')}".lower()


def _steps_for(report: dict, stage: str) -> list[dict]:
    return [s for s in report["steps"] if stage in _text(s)]


@pytest.mark.parametrize("cloud", sorted(CI_FILES))
def test_generated_ci_file_passes_end_to_end(tmp_path, rendered, cloud):
    repo = _generated(tmp_path, rendered, cloud)
    out, report = _run(repo, cloud)
    assert out.exit_code == 0, out.output
    assert report["status"] == "passed"
    # The CI file's test step ran the generated suite whole (the cloud's offline tests with it) and every
    # test passed: nothing skipped, nothing deselected. tests/clouds/ runs the suites of the other renders.
    [unit_tests] = [s for s in report["steps"] if re.search(r"pytest|unit.tests", _text(s))]
    log = Path(unit_tests["log"]).read_text()
    assert unit_tests["status"] == "passed" and re.search(r"\b\d+ passed\b", log), log[-3000:]
    assert (repo / "tests" / f"test_{cloud}.py").exists()
    assert "skipped" not in log and "deselected" not in log, log[-3000:]
    for stage in STAGES:
        steps = _steps_for(report, stage)
        assert steps, f"no {stage} step in {[s['name'] for s in report['steps']]}"
        # each stage ran and passed; its other form (Azure: the signed-in AzureCLI step of the azure
        # target, the roll-back that runs only on failure) is skipped, never failed
        assert any(s["status"] == "passed" for s in steps), steps
        assert all(s["status"] in ("passed", "skipped") for s in steps), steps


# One provider is enough for the gate (the stage is the same everywhere); AWS because CodeBuild still
# runs post_build after a failed build, which must then not deploy.
@pytest.mark.parametrize("cloud", ["aws"])
def test_unreachable_gate_fails_at_the_gate_step(tmp_path, rendered, cloud):
    repo = _generated(tmp_path, rendered, cloud, whole_suite=False, metric="accuracy", metric_threshold=0.9999)
    out, report = _run(repo, cloud)
    assert out.exit_code == 1, out.output
    assert report["status"] == "failed"
    failed = [s for s in report["steps"] if s["status"] == "failed"]
    assert failed and "gate" in _text(failed[0]), [s["name"] for s in failed]
    # post_build still runs after a failed build (CodeBuild semantics) and must not deploy
    post_build = [s for s in report["steps"] if s["detail"].get("phase") == "post_build"]
    assert post_build, [s["name"] for s in report["steps"]]
    for step in post_build:
        log = Path(step["log"]).read_text()
        assert "skipped (the build failed" in log and "deploy: ok" not in log, log[-500:]


# One cloud is enough for the rehearsal of a retraining trigger end to end (the variables of every
# cloud and event are checked without running, in test_events.py): Cloud Build, whose Pub/Sub trigger
# for new data chooses the build file and its substitutions.
def test_new_data_runs_the_retrain_trigger_and_trains_only_on_new_data(tmp_path, rendered):
    repo = _generated(tmp_path, rendered, "gcp", whole_suite=False)
    out, report = _run(repo, "gcp", "--event", "data")
    assert out.exit_code == 0, out.output
    assert report["event"]["declared_by"].startswith("infra/gcp/triggers/retrain-data.yaml"), report["event"]
    assert report["substitutions"]["_RUN_REASON"] == "data"
    assert report["status"] == "passed" and any(s["name"] == "train" and s["status"] == "passed"
                                                for s in report["steps"]), [s["name"] for s in report["steps"]]
    assert report["event"]["payload"].endswith("gcp-data.json")  # bound nowhere: recorded, and said so
    assert any("recorded only" in note for note in report["event"]["notes"])
