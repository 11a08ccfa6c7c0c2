"""The command itself: choosing files, usage errors, the isolated environment."""

from __future__ import annotations

import pytest

from .conftest import make_repo

pytestmark = pytest.mark.xdist_group("localci")

BUILDSPEC = "version: 0.2\nphases:\n  build:\n    commands: [echo aws]\n"
CLOUDBUILD = "steps:\n  - name: python\n    args: [python, -c, 'print(1)']\n"


def test_no_provider_runs_every_file_present(tmp_path):
    from click.testing import CliRunner

    from mlops_gen.localci.command import ci

    repo = make_repo(tmp_path / "r", {"buildspec.yml": BUILDSPEC, "cloudbuild.yaml": CLOUDBUILD})
    out = CliRunner().invoke(ci, ["run", "--repo", str(repo), "--no-venv"])
    assert out.exit_code == 0, out.output
    assert (repo / ".local-ci/aws/report.json").exists() and (repo / ".local-ci/gcp/report.json").exists()


def test_usage_errors_exit_2(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": BUILDSPEC})
    r = run_ci(repo, "azure")
    assert r.code == 2 and "azure-pipelines.yml" in r.output
    r = run_ci(repo, "aws", "--var", "NOEQUALS")
    assert r.code == 2


def test_isolated_environment_installs_the_project_over_the_cached_one(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {
        "pyproject.toml": """
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "tiny-proj"
            version = "0.1"
            [project.optional-dependencies]
            local = []
            [tool.mlops-gen.ci-run.vars]
            aws = { DEPLOY_TARGET = "local" }
            """,
        "src/tiny_proj/__init__.py": "VALUE = 42\n",
        "buildspec.yml": """
            version: 0.2
            phases:
              install:
                commands:
                  - python -m pip install -q ".[${DEPLOY_TARGET}]"
              build:
                commands:
                  - test "$(command -v python)" = "$VIRTUAL_ENV/bin/python"
                  - python -c "import tiny_proj; assert tiny_proj.VALUE == 42"
            """,
    })
    r = run_ci(repo, "aws", venv=True)
    assert r.code == 0, r.output
    assert "/venv/bin/python" in r.report["python"]
