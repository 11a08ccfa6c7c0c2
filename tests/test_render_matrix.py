"""Every combination of the choice questions renders files that parse, with no Jinja left over."""

from __future__ import annotations

import itertools
import json
import py_compile
import re
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.helpers import render

CLOUD_SETS = [list(c) for n in (1, 2, 3) for c in itertools.combinations(["aws", "azure", "gcp"], n)]
# Each task with each Python once per cloud set (the Python version changes a few lines, the task many).
COMBINATIONS = [
    {"clouds": clouds, "task": task, "python_version": py, **({"azure_ml_sdk": sdk} if "azure" in clouds else {})}
    for clouds in CLOUD_SETS
    for task, py in (("classification", "3.11"), ("regression", "3.12"), ("classification", "3.13"))
    for sdk in (("v2", "v1") if "azure" in clouds else ("v2",))
] + [
    # this repository's image on every cloud, and every environment in an account of its own
    {"clouds": clouds, "task": "classification", "python_version": "3.12", "serving": "image", "isolation": "multi",
     "framework": framework, "aws_staging_account_id": "210987654321", "aws_prod_account_id": "310987654321",
     "azure_staging_subscription_id": "5d1f3c2a-8b7e-4e21-9a3c-1f0e2d3c4b5a",
     "azure_prod_subscription_id": "6e2a4d3b-9c8f-4f32-8b4d-2a1f3e4d5c6b"}
    for clouds, framework in ((["aws", "azure", "gcp"], "lightgbm"), (["aws"], "xgboost"), (["gcp"], "sklearn"))
]
# A Jinja expression or tag that copier did not render; `${{ }}` is Azure Pipelines' own syntax.
LEFTOVER = re.compile(r"(?<![$])\{\{\s*[A-Za-z_][\w.]*\s*(\||\}\})|\{%-?\s*(if|for|endif|endfor|set)\b")


class _AnyTagLoader(yaml.SafeLoader):
    """CloudFormation short forms (!Ref, !Sub ...) are valid YAML with tags."""


_AnyTagLoader.add_multi_constructor("!", lambda loader, suffix, node: None)


def _check_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if not path.is_file() or ".git" in path.parts:
            continue
        text = path.read_text(encoding="utf-8")
        assert not LEFTOVER.search(text), f"unrendered Jinja in {path.relative_to(root)}"
        assert not path.name.endswith(".jinja"), path
        if path.suffix in (".yml", ".yaml"):
            list(yaml.load_all(text, Loader=_AnyTagLoader))
        elif path.suffix == ".toml":
            tomllib.loads(text)
        elif path.suffix == ".json":
            json.loads(text)
        elif path.suffix == ".py":
            py_compile.compile(str(path), doraise=True, cfile=str(root / ".pyc-check"))


def _id(combo: dict) -> str:
    return "-".join(["+".join(combo["clouds"]), combo["task"], combo["python_version"], combo.get("azure_ml_sdk", ""),
                     combo.get("serving", ""), combo.get("isolation", "")]).rstrip("-")


@pytest.mark.parametrize("combo", COMBINATIONS, ids=[_id(c) for c in COMBINATIONS])
def test_combination_renders_clean(tmp_path: Path, combo: dict) -> None:
    repo = render(tmp_path / "repo", **combo)
    _check_tree(repo)
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert answers["clouds"] == combo["clouds"]
    ci_files = {"aws": "buildspec.yml", "azure": "azure-pipelines.yml", "gcp": "cloudbuild.yaml"}
    extras = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for cloud, ci_file in ci_files.items():
        chosen = cloud in combo["clouds"]
        assert (cloud in extras) == chosen, f"extra {cloud}"
        assert (repo / "src" / answers["package_name"] / "targets" / cloud / "settings.py").exists() == chosen
        assert not (repo / ci_file).exists() or chosen, f"{ci_file} rendered for an unchosen cloud"
    config = yaml.safe_load((repo / "mlops.yaml").read_text())
    assert config["serving"]["mode"] == combo.get("serving", "prebuilt")
    environments = config["environments"]
    if combo.get("isolation") == "multi":  # each environment names where it lives, for each chosen cloud only
        keys = {"aws": {"aws_account_id"}, "azure": {"azure_subscription_id", "azure_resource_group", "azure_workspace"},
                "gcp": {"gcp_project_id"}}
        expected = {"approval_required"}.union(*(keys[c] for c in combo["clouds"]))
        assert all(set(env) == expected for env in environments.values()), environments
        if "aws" in combo["clouds"]:
            assert [environments[e]["aws_account_id"] for e in ("staging", "prod")] == [
                combo["aws_staging_account_id"], combo["aws_prod_account_id"]]
        if "gcp" in combo["clouds"]:
            projects = [environments[e]["gcp_project_id"] for e in ("staging", "prod")]
            assert len({answers["gcp_project_id"], *projects}) == 3
    else:
        assert environments == {"staging": {"approval_required": False}, "prod": {"approval_required": True}}


FRAMEWORK_PACKAGES = {"sklearn": None, "xgboost": "xgboost", "lightgbm": "lightgbm"}
# The newest release of each framework that installs on the project's Python (XGBoost 3.3+ needs 3.12).
FRAMEWORK_PINS = {("xgboost", "3.11"): "xgboost==3.2.0", ("xgboost", "3.12"): "xgboost==3.4.1",
                  ("xgboost", "3.13"): "xgboost==3.4.1", ("lightgbm", "3.11"): "lightgbm==4.7.0",
                  ("lightgbm", "3.12"): "lightgbm==4.7.0", ("lightgbm", "3.13"): "lightgbm==4.7.0"}
FRAMEWORK_COMBOS = [(f, task, py) for f in FRAMEWORK_PACKAGES for task, py in (("classification", "3.11"),
                                                                            ("regression", "3.13"))]


@pytest.mark.parametrize(("framework", "task", "python_version"), FRAMEWORK_COMBOS,
                         ids=["-".join(c) for c in FRAMEWORK_COMBOS])
def test_framework_follows_into_dependencies_config_and_readme(tmp_path: Path, framework: str, task: str,
                                                               python_version: str) -> None:
    repo = render(tmp_path / "repo", framework=framework, task=task, python_version=python_version,
                  clouds=["azure"] if framework != "sklearn" else ["aws", "gcp"])
    _check_tree(repo)
    assert yaml.safe_load((repo / ".copier-answers.yml").read_text())["framework"] == framework
    dependencies = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    others = [d for d in dependencies if d.split("==")[0] in ("xgboost", "lightgbm")]
    assert others == ([FRAMEWORK_PINS[framework, python_version]] if FRAMEWORK_PACKAGES[framework] else [])
    assert "scikit-learn==1.9.1" in dependencies
    model = yaml.safe_load((repo / "mlops.yaml").read_text())["model"]
    assert model["estimator"] == (framework if framework != "sklearn" else "random_forest")
    config = (repo / "src" / "my_ml_project" / "config.py").read_text()
    names = re.search(r"^BUILT_IN_ESTIMATORS = \((.*)\)$", config, re.M).group(1)
    expected = ([framework] if framework != "sklearn" else []) + ["random_forest", "gradient_boosting", "linear"]
    assert [n.strip().strip('"') for n in names.split(",")] == expected
    readme = (repo / "README.md").read_text()
    section = readme.split("## Frameworks", 1)[1].split("\n## ", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("| ")]
    clouds = "| Azure ML |" if framework != "sklearn" else "| AWS (SageMaker) | Google Cloud (Vertex AI) |"
    assert table[0] == "| framework | local (`serve`) " + clouds
    assert len(table) == 4 and all(line.count("|") == table[0].count("|") for line in table)
    assert "(this repository)" in next(line for line in table if line.lower().startswith(
        f"| {({'sklearn': 'scikit-learn'}).get(framework, framework)}"))
