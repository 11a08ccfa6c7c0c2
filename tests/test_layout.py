"""One shape for the generated repository: a cloud is one folder of code, and one place decides
which files a render gets.

A cloud's files are exactly its CI file(s) at the root, `infra/<cloud>/`,
`src/<pkg>/targets/<cloud>/` and `tests/test_<cloud>*.py` (plus `.amlignore`, where Azure ML looks
for it). Nothing else may name a cloud; `copier update` with a cloud unticked removes exactly them.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import copier
import pytest

from mlops_gen import CHECKOUT_ROOT
from tests.helpers import render

CLOUDS = ("aws", "azure", "gcp")
# Words that name a cloud or its services in a path.
CLOUD_WORDS = re.compile(r"aws|azure|gcp|sagemaker|vertex|buildspec|cloudbuild|amlignore|azureml|google")
ROOT_FILES = {"aws": {"buildspec.yml", "buildspec-prod.yml"}, "azure": {"azure-pipelines.yml", ".amlignore"},
              "gcp": {"cloudbuild.yaml", "cloudbuild.prod.yaml"}}


def cloud_files(repo: Path, cloud: str, package: str) -> set[str]:
    """The files of `cloud` in a rendered repository, by the layout rule."""
    owned = set()
    for path in repo.rglob("*"):
        rel = path.relative_to(repo).as_posix()
        if not path.is_file() or rel.startswith(".git/"):
            continue
        if (rel in ROOT_FILES[cloud] or rel.startswith((f"infra/{cloud}/", f"src/{package}/targets/{cloud}/"))
                or re.fullmatch(rf"tests/test_{cloud}\w*\.py", rel)):
            owned.add(rel)
    return owned


def test_no_template_file_name_carries_a_condition():
    names = [p.relative_to(CHECKOUT_ROOT / "template").as_posix() for p in (CHECKOUT_ROOT / "template").rglob("*")]
    assert names and not [n for n in names if "{%" in n]
    # the only Jinja in names: the package folder and copier's answers file
    assert {re.sub(r"\{\{.*?\}\}", "", n) for n in names if "{{" in n} >= {"src/"}
    assert len({n for n in names if "{{" in n and not n.startswith("src/{{package_name}}")}) == 1


@pytest.mark.parametrize("cloud", CLOUDS)
def test_a_single_cloud_render_names_its_cloud_only_in_its_places(tmp_path: Path, cloud: str):
    repo = render(tmp_path / "repo", clouds=[cloud], package_name="pkg")
    owned = cloud_files(repo, cloud, "pkg")
    assert owned >= ROOT_FILES[cloud] - {".amlignore"} | ({".amlignore"} if cloud == "azure" else set())
    assert any(p.startswith("src/pkg/targets/") for p in owned) and any(p.startswith("tests/") for p in owned)
    others = [c for c in CLOUDS if c != cloud]
    for path in repo.rglob("*"):
        rel = path.relative_to(repo).as_posix()
        if not path.is_file() or rel in owned:
            continue
        assert not CLOUD_WORDS.search(rel), f"{rel} names a cloud outside the cloud's places"
    for other in others:
        assert not cloud_files(repo, other, "pkg"), other
        assert not (repo / "infra" / other).exists() and not (repo / "src/pkg/targets" / other).exists()


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                   env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "t",
                        "GIT_COMMITTER_EMAIL": "t@example.com", "PATH": "/usr/bin:/bin", "HOME": str(cwd)})


def test_unticking_a_cloud_in_copier_update_removes_exactly_its_files(tmp_path: Path):
    template = tmp_path / "template"
    shutil.copytree(CHECKOUT_ROOT / "template", template / "template")
    shutil.copy(CHECKOUT_ROOT / "copier.yml", template / "copier.yml")
    _git(template, "init", "-q", "-b", "main")
    _git(template, "add", "-A")
    _git(template, "commit", "-q", "-m", "template")
    _git(template, "tag", "v1.0.0")
    repo = tmp_path / "repo"
    copier.run_copy(str(template), str(repo), defaults=True, quiet=True, unsafe=True,
                    data={"package_name": "pkg", "clouds": list(CLOUDS)})
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "generated")
    before = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    azure = cloud_files(repo, "azure", "pkg")
    assert len(azure) >= 10

    copier.run_update(str(repo), data={"clouds": ["aws", "gcp"]}, defaults=True, overwrite=True, quiet=True,
                      unsafe=True, skip_answered=True)
    after = {p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file() and ".git" not in p.parts}
    gone = before - after
    assert gone == azure
    assert cloud_files(repo, "aws", "pkg") and cloud_files(repo, "gcp", "pkg")
