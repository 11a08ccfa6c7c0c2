"""The serving image and the Kubernetes target of a generated repository: its own offline tests pass,
and every environment's manifests, rendered by kustomize itself (`kubectl kustomize`), are valid objects
of the clusters' Kubernetes version and of the official client's models."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.helpers import project_python, render, run_generated_tests

K8S_TESTS = ["tests/test_k8s.py", "tests/test_image.py"]

# Run in the generated repository's environment (kubernetes-validate and the client are its dev extra):
# each rendered object validated strictly against the schemas of k8s.kubernetes_version, then read by
# the client into its model and written back unchanged (no field the client does not know).
VALIDATE = """
import json, sys, yaml, kubernetes_validate
from kubernetes import client
MODELS = {"Deployment": "V1Deployment", "Service": "V1Service", "PodDisruptionBudget": "V1PodDisruptionBudget",
          "HorizontalPodAutoscaler": "V2HorizontalPodAutoscaler"}
class Response:
    def __init__(self, obj): self.data = json.dumps(obj)
api, version, found = client.ApiClient(), sys.argv[1], []
for doc in yaml.safe_load_all(sys.stdin):
    kubernetes_validate.validate(doc, version, strict=True)
    assert api.sanitize_for_serialization(api.deserialize(Response(doc), MODELS[doc["kind"]])) == doc, doc["kind"]
    found.append([doc["kind"], doc["metadata"]["name"], doc["metadata"].get("namespace")])
print(json.dumps(found))
"""


def kustomize(overlay: Path) -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (it carries kustomize) is needed to render infra/k8s/: install it"
    run = subprocess.run([kubectl, "kustomize", str(overlay)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render(tmp_path_factory.mktemp("k8s") / "repo", clouds=["gcp"], package_name="k8s_model",
                  project_name="Churn Scorer", python_version="3.12")


@pytest.fixture(scope="module")
def python(repo: Path) -> Path:
    return project_python(repo, ["local", "dev", "k8s"], label="k8s")


@pytest.mark.xdist_group("k8s-venv")
def test_every_environment_renders_to_valid_objects_in_its_namespace(repo: Path, python: Path) -> None:
    config = yaml.safe_load((repo / "mlops.yaml").read_text())["k8s"]
    for env, settings in config["environments"].items():
        rendered = kustomize(repo / "infra" / "k8s" / "overlays" / env)
        run = subprocess.run([str(python), "-c", VALIDATE, config["kubernetes_version"]], input=rendered,
                             capture_output=True, text=True, timeout=300)
        assert run.returncode == 0, run.stderr[-3000:]
        objects = json.loads(run.stdout)
        assert sorted(kind for kind, _, _ in objects) == [
            "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget", "Service"]
        assert {(name, namespace) for _, name, namespace in objects} == {("churn-scorer", settings["namespace"])}


@pytest.mark.xdist_group("k8s-venv")
def test_the_generated_image_and_k8s_tests_pass_and_lint(repo: Path, python: Path) -> None:
    dockerfile = (repo / "Dockerfile").read_text()
    assert "ARG PYTHON_IMAGE=python:3.12-slim-trixie" in dockerfile
    assert '["python", "-m", "k8s_model"]' in dockerfile
    result = run_generated_tests(repo, python, *K8S_TESTS)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "skipped" not in result.stdout
    lint = subprocess.run([str(python.parent / "ruff"), "check", "src", *K8S_TESTS], cwd=repo, capture_output=True,
                          text=True)
    assert lint.returncode == 0, lint.stdout
