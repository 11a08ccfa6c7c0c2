"""The contract of mlops_gen.copier_seam with copier: what the tool needs from it, checked on a small
template. tests/test_copier_versions.py runs this module and tests/fleet/test_update.py (update,
three-way merge, conflict markers, against copier's own `run_update`) under the oldest and the newest
copier that pyproject.toml admits."""

from __future__ import annotations

from pathlib import Path

import copier
import pytest
import yaml

from mlops_gen import copier_seam
from tests.fleet.helpers import git, make_template, tree


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Path:
    return make_template(tmp_path_factory.mktemp("tpl"))


def test_copy_renders_answers_and_files(template: Path, tmp_path: Path) -> None:
    copier_seam.copy(template, tmp_path / "out", data={"project_name": "Gamma Ray"}, defaults=True,
                     vcs_ref="v1.0.0")
    assert (tmp_path / "out" / "src" / "gamma_ray" / "main.py").read_text().startswith('"""Entry point of Gamma Ray.')
    answers = yaml.safe_load((tmp_path / "out" / ".copier-answers.yml").read_text())
    assert answers["_commit"] == "v1.0.0" and answers["project_name"] == "Gamma Ray"


def test_copy_reports_a_refused_answer_as_a_user_error(tmp_path: Path) -> None:
    tpl = tmp_path / "tpl"
    tpl.mkdir()
    (tpl / "copier.yml").write_text("size:\n  type: int\n  validator: '{% if size > 3 %}size: at most 3{% endif %}'\n")
    with pytest.raises(copier_seam.UserError) as caught:
        copier_seam.copy(tpl, tmp_path / "out", data={"size": 9}, defaults=True)
    assert "at most 3" in str(caught.value)


def test_checkout_tags_and_commit(template: Path, tmp_path: Path) -> None:
    url = str(template)
    assert copier_seam.repo_url(url) and copier_seam.latest_tag(url) == "v2.0.0"
    copier_seam.checkout(url, "v1.0.0", str(tmp_path / "co"))
    commit, commit_hash, version = copier_seam.template_info(url, "v1.0.0", str(tmp_path / "co"))
    assert commit == "v1.0.0" and str(version) == "1.0.0"
    assert commit_hash == git(template, "rev-parse", "v1.0.0^{commit}").strip()
    assert copier_seam.repo_url(str(tmp_path / "not-there")) is None


def test_in_process_render_is_copiers_render(template: Path, tmp_path: Path) -> None:
    """The fleet's fast renderer (copier internals) gives copier's own tree, render after render."""
    copier.run_copy(str(template), str(tmp_path / "reference"), data={"project_name": "Delta"}, defaults=True,
                    unsafe=True, quiet=True, vcs_ref="v2.0.0")
    copier_seam.checkout(str(template), "v2.0.0", str(tmp_path / "co"))
    commit, commit_hash, version = copier_seam.template_info(str(template), "v2.0.0", str(tmp_path / "co"))
    renderer = copier_seam.Renderer(str(template), "v2.0.0", str(tmp_path / "co"), commit, commit_hash, version)
    for attempt in ("first", "second"):
        out = tmp_path / attempt / "reference"
        skip = renderer.render(out, ".copier-answers.yml", data={"project_name": "Delta"}, last_answers={},
                               exclude=renderer.exclude)
        assert tree(out) == tree(tmp_path / "reference"), attempt
        assert skip(Path("README.md")) is False
    assert renderer.config.get("tasks") in (None, [])
