"""A generated repository passes its own tests and lint: one run per task, and one per framework beyond
scikit-learn, on the local target."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.helpers import project_python, render, run_generated_tests

LOCAL_TESTS = ["tests/test_config.py", "tests/test_model.py", "tests/test_serving.py", "tests/test_local_e2e.py",
               "tests/test_data_contract.py"]
# The server factory's own tests (parentage, environment, off switch, private socket folder) do not depend on
# the task or the framework (test_local_e2e deploys through the factory in every run): they run in each CI
# file's test step on the default render (tests/localci/test_generated_repos.py) and here on Python 3.13,
# whose fork differs (3.12+ warns on fork with threads).
FACTORY_TESTS = ["tests/test_server_factory.py"]


@pytest.mark.parametrize("task", ["regression"])
def test_generated_repo_passes_its_local_suite_and_ruff(tmp_path: Path, task: str) -> None:
    # No cloud here: the cloud suites run in tests/clouds/ with their SDKs installed. A classification
    # render (the default answers) runs its whole suite and ruff in every CI file's test and lint steps
    # (tests/localci/test_generated_repos.py).
    repo = render(tmp_path / "repo", task=task, clouds=["gcp"], package_name=f"{task}_model")
    python = project_python(repo, ["local", "dev"], label="project")
    result = run_generated_tests(repo, python, *LOCAL_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
    lint = subprocess.run([str(python.parent / "ruff"), "check", "src", "tests"], cwd=repo, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("framework", "task"), [("xgboost", "classification"), ("lightgbm", "regression")])
def test_a_framework_repo_passes_its_local_suite_and_ruff(tmp_path: Path, framework: str, task: str) -> None:
    """train -> evaluate -> gate -> register -> deploy -> smoke on the local target (test_local_e2e), with
    the framework's estimator, its determinism, its labels and its silence (tests/test_model.py)."""
    repo = render(tmp_path / "repo", framework=framework, task=task, clouds=["azure"], package_name=f"{framework}_model")
    python = project_python(repo, ["local", "dev"], label=f"project-{framework}")
    result = run_generated_tests(repo, python, *LOCAL_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
    assert f"test_the_model_is_{framework}_in_the_preprocessing_pipeline" in (repo / "tests" / "test_model.py").read_text()
    lint = subprocess.run([str(python.parent / "ruff"), "check", "src", "tests"], cwd=repo, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


@pytest.mark.slow
def test_a_python_3_13_repo_passes_its_local_suite_on_python_3_13(tmp_path: Path) -> None:
    """python_version 3.13: the pinned dependencies install on 3.13 and the local suite passes there (the
    cloud extras' resolution on 3.13 is checked without installing, in test_render_matrix)."""
    interpreter = _python_3_13()
    if interpreter is None:
        pytest.skip("no Python 3.13 on this machine (on PATH, or installed by pyenv)")
    repo = render(tmp_path / "repo", python_version="3.13", framework="xgboost", clouds=["azure"],
                  package_name="py313_model")
    python = project_python(repo, ["local", "dev"], label="project-py313", python=interpreter)
    version = subprocess.run([str(python), "-c", "import sys; print(sys.version_info[:2])"], capture_output=True, text=True)
    assert version.stdout.strip() == "(3, 13)"
    result = run_generated_tests(repo, python, *LOCAL_TESTS, *FACTORY_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout


def _python_3_13() -> str | None:
    """A working CPython 3.13: on PATH, else one pyenv installed (its shim fails without `pyenv global`)."""
    candidates = [shutil.which("python3.13"), *sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.13*/bin/python3.13")))]
    for candidate in filter(None, candidates):
        if subprocess.run([candidate, "-c", "import sys; assert sys.version_info[:2] == (3, 13)"],
                          capture_output=True).returncode == 0:
            return candidate
    return None
