"""`fleet update` on a fleet with user edits: copier's trees, nothing lost, skips with reasons."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_gen.fleet.command import fleet as fleet_cli
from mlops_gen.fleet.merge import has_markers
from tests.fleet.conftest import RANDOM_REPOS, USER_EDITS
from tests.fleet.helpers import copier_update, git, tree

# repositories copier itself can update, and that need no structural merge
TEXTUAL = ["pristine", "far-edit", "same-line", "ci-far", "ci-clash", "script", "deleted", "added", *RANDOM_REPOS]
SKIPPED = {"dirty": "uncommitted changes", "broken": "broken answers file", "unknown-ref": "not found",
           "not-git": "not a git repository"}


def update(fleet: Path, *extra: str) -> tuple[int, dict, str]:
    report = fleet.parent / "update.json"
    result = CliRunner().invoke(fleet_cli, ["update", str(fleet), "--report", str(report), *extra],
                                catch_exceptions=False)
    data = json.loads(report.read_text())
    return result.exit_code, {Path(r["path"]).name: r for r in data["repos"]}, result.output


@pytest.fixture(scope="module")
def updated(fixture_world: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict, str]:
    """The whole test fleet updated once, in parallel; the tests below only read it."""
    fleet = Path(shutil.copytree(fixture_world[1], tmp_path_factory.mktemp("updated") / "fleet", symlinks=True))
    code, repos, output = update(fleet, "--jobs", "2")
    return fleet, code, repos, output


def test_statuses_and_skip_reasons(updated: tuple) -> None:
    _, code, repos, output = updated
    assert code == 1                                  # some repositories were skipped
    for name, reason in SKIPPED.items():
        assert repos[name]["status"] == "skipped", name
        assert reason in repos[name]["reason"], (name, repos[name]["reason"])
    assert repos["current"]["status"] == "up-to-date"
    assert repos["same-line"]["status"] == "conflicted"
    assert repos["same-line"]["units"][0]["conflicts"] == ["src/beta/main.py"]
    assert repos["ci-clash"]["units"][0]["conflicts"] == ["ci.yml"]
    assert repos["ci-near"]["status"] == "updated"
    assert repos["ci-near"]["units"][0]["yaml_merged"] == ["ci.yml"]
    assert repos["kept"]["units"][0]["kept"] == ["old.txt"]
    assert repos["added"]["units"][0]["conflicts"] == ["docs/guide.md"]   # added on both sides
    for name in ("pristine", "far-edit", "ci-far", "script", "deleted", "multi"):
        assert repos[name]["status"] == "updated", (name, repos[name])
    assert "4 skipped" in output and "uncommitted" in output and "branch template-update/v2.0.0" in output


def test_same_trees_as_copier_update(updated: tuple, reference: Path) -> None:
    fleet = updated[0]
    for name in TEXTUAL:
        copier_update(reference / name)
        assert tree(fleet / name) == tree(reference / name), name


def test_same_trees_as_copier_without_yaml_merge(fleet: Path, reference: Path) -> None:
    update(fleet / "ci-near", "--no-yaml-merge", "--jobs", "1")
    copier_update(reference / "ci-near")
    assert tree(fleet / "ci-near") == tree(reference / "ci-near")
    assert has_markers((fleet / "ci-near/ci.yml").read_bytes())


def test_one_commit_on_a_new_branch(updated: tuple) -> None:
    fleet, _, repos, _ = updated
    repo = fleet / "same-line"
    assert git(repo, "branch", "--show-current").strip() == "template-update/v2.0.0"
    assert git(repo, "rev-list", "--count", "main..HEAD").strip() == "1"
    assert git(repo, "status", "--porcelain") == ""
    message = git(repo, "log", "-1", "--format=%B")
    assert "v1.0.0 -> v2.0.0" in message and "- src/beta/main.py" in message
    assert repos["same-line"]["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert "_commit: v2.0.0" in (repo / ".copier-answers.yml").read_text()


def test_every_user_edit_is_kept(updated: tuple) -> None:
    fleet = updated[0]
    for name, edits in USER_EDITS.items():
        for rel, _, new in edits:
            text = (fleet / name / rel).read_text()
            for line in new.splitlines():
                assert line in text, (name, rel, line)
    assert not (fleet / "deleted/notes.md").exists()
    assert (fleet / "added/extra.txt").read_text() == "my own file\n"
    assert "# My own guide" in (fleet / "added/docs/guide.md").read_text()
    assert "but we still need it" in (fleet / "kept/old.txt").read_text()
    assert not (fleet / "pristine/old.txt").exists()
    assert (fleet / "script/scripts/run.sh").stat().st_mode & 0o111


def test_yaml_merge_keeps_comments_and_both_changes(updated: tuple) -> None:
    text = (updated[0] / "ci-near/ci.yml").read_text()
    assert not has_markers(text.encode())
    for line in ("DEPLOY_TARGET: aws  # the one switch", "REGION: eu-west-1  # mine", 'PYTHONUNBUFFERED: "1"',
                 "- make lint", "- make deploy", "# CI for Beta"):
        assert line in text
    assert text.index("make lint") < text.index("make deploy")


def test_two_sub_projects_in_one_commit(updated: tuple) -> None:
    fleet, _, repos, _ = updated
    units = {u["answers_file"]: u["status"] for u in repos["multi"]["units"]}
    assert units == {".copier-answers.yml": "updated", "service/.copier-answers.yml": "updated"}
    repo = fleet / "multi"
    assert git(repo, "rev-list", "--count", "main..HEAD").strip() == "1"
    assert (repo / "service/docs/guide.md").read_text() == "# Guide to Delta\n"
    assert (repo / "docs/guide.md").read_text() == "# Guide to Gamma\n"


def test_skipped_repositories_are_untouched(fleet: Path) -> None:
    before = {name: tree(fleet / name) for name in SKIPPED}
    listing = fleet / "skipped.txt"
    listing.write_text("\n".join(SKIPPED))
    code, repos, _ = update(listing, "--jobs", "1")
    assert code == 1 and {r["status"] for r in repos.values()} == {"skipped"}
    for name in SKIPPED:
        assert tree(fleet / name) == before[name], name
        if name != "not-git":
            assert git(fleet / name, "branch", "--show-current").strip() == "main"
            assert "template-update" not in git(fleet / name, "branch")


def test_existing_branch_is_a_skip_not_a_loss(fleet: Path) -> None:
    repo = fleet / "far-edit"
    git(repo, "branch", "template-update/v2.0.0")
    before = tree(repo)
    code, repos, _ = update(repo, "--jobs", "1")
    assert code == 1 and repos["far-edit"]["status"] == "skipped"
    assert "already exists" in repos["far-edit"]["units"][0]["reason"]
    assert tree(repo) == before and git(repo, "branch", "--show-current").strip() == "main"


def test_ignored_file_in_the_way_is_not_overwritten(fleet: Path) -> None:
    # git checkout would silently overwrite an ignored file where the template adds one
    repo = fleet / "pristine"
    (repo / ".gitignore").write_text("docs/\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-qm", "ignore docs")
    (repo / "docs").mkdir()
    (repo / "docs/guide.md").write_text("local scratch\n")
    before = tree(repo)
    code, repos, _ = update(repo, "--jobs", "1")
    assert code == 1 and repos["pristine"]["status"] == "skipped"
    assert "docs/guide.md" in repos["pristine"]["reason"]
    assert tree(repo) == before and git(repo, "branch", "--show-current").strip() == "main"
    assert "template-update" not in git(repo, "branch")


def test_no_switch_leaves_the_current_branch(fleet: Path) -> None:
    repo = fleet / "same-line"
    before = tree(repo)
    code, repos, _ = update(repo, "--no-switch", "--branch", "chore/template", "--jobs", "1")
    assert code == 0 and repos["same-line"]["branch"] == "chore/template"
    assert tree(repo) == before and git(repo, "branch", "--show-current").strip() == "main"
    assert "<<<<<<< before updating" in git(repo, "show", "chore/template:src/beta/main.py")


def test_list_file_and_explicit_target(fleet: Path, tmp_path: Path) -> None:
    listing = tmp_path / "repos.txt"
    listing.write_text(f"# two repositories\n{fleet / 'pristine'}\n\n{fleet / 'far-edit'}\n")
    code, repos, _ = update(listing, "--to", "v1.0.0", "--jobs", "1")
    assert code == 0 and set(repos) == {"pristine", "far-edit"}
    assert {r["status"] for r in repos.values()} == {"up-to-date"}
    code, repos, _ = update(listing, "--to", "v2.0.0", "--jobs", "1")
    assert code == 0 and {r["status"] for r in repos.values()} == {"updated"}


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    assert CliRunner().invoke(fleet_cli, ["update", str(tmp_path)]).exit_code == 2
    assert CliRunner().invoke(fleet_cli, ["update", str(tmp_path / "missing")]).exit_code == 2
    assert CliRunner().invoke(fleet_cli, ["update", str(tmp_path), "--branch", "a..b"]).exit_code == 2


@contextmanager
def unwritable(path: Path):
    """A file git can neither replace nor unlink: immutable as root, in a read-only folder otherwise."""
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True)
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.parent.stat().st_mode
        path.parent.chmod(0o555)
        try:
            yield
        finally:
            path.parent.chmod(mode)


def test_a_file_git_cannot_write_fails_the_repository_and_keeps_it_intact(fleet: Path) -> None:
    repo = fleet / "far-edit"
    update(repo, "--no-switch", "--branch", "probe", "--jobs", "1")  # which files the update rewrites
    changed = git(repo, "diff", "--name-only", "--diff-filter=M", "main", "probe").split()
    git(repo, "branch", "-D", "probe")
    assert changed
    before = tree(repo)
    with unwritable(repo / changed[0]):
        code, repos, _ = update(repo, "--jobs", "1")
        assert tree(repo) == before  # every file as it was, the user's edits included
    assert code == 1 and repos["far-edit"]["status"] == "failed"
    assert changed[0] in repos["far-edit"]["reason"] and "left on main as it was" in repos["far-edit"]["reason"]
    assert git(repo, "branch", "--show-current").strip() == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert "template-update" not in git(repo, "branch")
