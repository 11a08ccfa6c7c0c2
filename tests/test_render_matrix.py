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
COMBINATIONS = [
    {"clouds": clouds, "task": task, "python_version": py, **({"azure_ml_sdk": sdk} if "azure" in clouds else {})}
    for clouds in CLOUD_SETS
    for task in ("classification", "regression")
    for py in ("3.11", "3.12")
    for sdk in (("v2", "v1") if "azure" in clouds else ("v2",))
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
    return "-".join(["+".join(combo["clouds"]), combo["task"], combo["python_version"], combo.get("azure_ml_sdk", "")])


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
