"""`ci run` knows the services, not this template: three real CI files by other people (tests/corpus,
one per service), each run on a small repository that gives their steps what they call, offline."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import make_repo

pytestmark = pytest.mark.xdist_group("localci")
REAL = Path(__file__).resolve().parents[1] / "corpus" / "real-ci"


def with_real_file(tmp_path: Path, corpus_name: str, ci_name: str, files: dict[str, str]) -> Path:
    repo = make_repo(tmp_path / "r", files, commit=False)
    shutil.copyfile(next(REAL.rglob(corpus_name)), repo / ci_name)
    return make_repo(repo, {})


def test_codebuild_sagemaker_project_seed_buildspec(tmp_path, run_ci):
    """The SageMaker JumpStart MLOps seed code's buildspec: installs the repository (a console script
    `run-pipeline`) with pip and calls it with JSON built from exported and given variables."""
    repo = with_real_file(tmp_path, "aws-samples__amazon-sagemaker-jumpstart-mlops__codebuild-buildspec.yml",
                          "buildspec.yml", {
        "pyproject.toml": """
            [build-system]
            requires = ["hatchling"]
            build-backend = "hatchling.build"
            [project]
            name = "pipelines"
            version = "0.1"
            [project.scripts]
            run-pipeline = "pipelines.run:main"
            """,
        "src/pipelines/__init__.py": "",
        "src/pipelines/run.py": """
            import argparse, json, sys

            def main():
                p = argparse.ArgumentParser()
                for flag in ("--module-name", "--role-arn", "--tags", "--kwargs"):
                    p.add_argument(flag, required=True)
                a = p.parse_args()
                kwargs, tags = json.loads(a.kwargs), json.loads(a.tags)
                assert kwargs["pipeline_name"] == "churn-p-123", kwargs
                assert tags[0]["Value"] == "churn", tags
                print("pipeline", kwargs["pipeline_name"], "for", a.module_name)
            """,
    })
    r = run_ci(repo, "aws", "--var", "SAGEMAKER_PROJECT_NAME=churn", "--var", "SAGEMAKER_PROJECT_ID=p-123",
               "--var", "SAGEMAKER_PIPELINE_ROLE_ARN=arn:aws:iam::000000000000:role/r", venv=True)
    assert r.code == 0, r.output
    assert [s["detail"]["phase"] for s in r.report["steps"]] == ["install", "build", "build", "build", "build"]
    assert "pipeline churn-p-123 for pipelines.customer_churn.pipeline" in r.log("run-pipeline")


def test_cloud_build_cluster_api_release_staging(tmp_path, run_ci):
    """Kubernetes cluster-api's cloudbuild.yaml: ALLOW_LOOSE with snake_case options, a builder image
    mapped to the host (its entrypoint `make`), substitutions into the step's environment."""
    repo = with_real_file(tmp_path, "kubernetes-sigs__cluster-api__cloudbuild.yaml", "cloudbuild.yaml", {
        "Makefile": """
            release-staging:
            \ttest "$$TAG" = v20261202-abc && test "$$PULL_BASE_REF" = main && test "$$DOCKER_BUILDKIT" = 1
            \techo staged $$TAG
            """,
    })
    image = "gcr.io/k8s-staging-test-infra/gcb-docker-gcloud:v20230424-910a2a439d"
    r = run_ci(repo, "gcp", "--map-image", f"{image}=", "--var", "_GIT_TAG=v20261202-abc",
               "--var", "_PULL_BASE_REF=main")
    assert r.code == 0, r.output
    assert len(r.report["steps"]) == 1 and r.report["steps"][0]["status"] == "passed"
    assert "staged v20261202-abc" in r.log("make")


def test_azure_scikit_learn_posix_job_template(tmp_path, run_ci):
    """scikit-learn's posix.yml: a job template with parameters, job variables and macros, conditions
    on variables, Cache@2 and PublishTestResults@2, and an env mapping of an undefined secret."""
    repo = with_real_file(tmp_path, "scikit-learn__scikit-learn__build_tools__azure__posix.yml",
                          "azure-pipelines.yml", {
        "build_tools/azure/install.sh": """
            set -eu
            test "$VIRTUALENV" = testvenv && test "$OMP_NUM_THREADS" = 2
            echo installed
            """,
        "build_tools/azure/test_script.sh": """
            set -eu
            mkdir -p "$TEST_DIR"
            printf '<testsuite name="t" tests="1" failures="0"><testcase name="ok"/></testsuite>' \\
              > "$TEST_DIR/$JUNITXML"
            """,
        "build_tools/azure/test_docs.sh": "echo docs ok\n",
        "build_tools/azure/upload_codecov.sh": "test -z \"${CODECOV_TOKEN:-}\" || test \"$CODECOV_TOKEN\" != ''\n",
    })
    for script in (repo / "build_tools" / "azure").iterdir():
        script.chmod(0o755)
    r = run_ci(repo, "azure", "--var", "name=Linux")
    assert r.code == 0, r.output
    statuses = {s["name"].split("/", 1)[-1]: s["status"] for s in r.report["steps"]}
    assert statuses["Add conda to PATH"] == "skipped"             # DISTRIB is not conda
    assert statuses["Test Soft Dependency"] == "skipped"
    for name in ("Install", "Test Library", "Test Docs", "Publish Test Results", "Upload To Codecov"):
        assert statuses[name] == "passed", (name, statuses)
