from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from tests.fleet.helpers import commit_all, edit, git, make_repo, make_template

# name -> (edits applied after generation and committed). Each edit: (file, old, new) or a callable.
USER_EDITS = {
    "far-edit": [("src/beta/main.py", "def train():\n    return 1\n", "def train():\n    return 100  # mine\n"),
                 ("README.md", "# Beta\n", "# Beta, by the beta team\n")],
    "same-line": [("src/beta/main.py", "    return 3\n", "    return 33  # my deploy\n")],
    "ci-far": [("ci.yml", "# CI for Beta\n", "# CI for Beta (owned by team beta)\n")],
    "ci-near": [("ci.yml", "    DEPLOY_TARGET: local  # the one switch\n",
                 "    DEPLOY_TARGET: aws  # the one switch\n    REGION: eu-west-1  # mine\n"),
                ("ci.yml", "      - make test\n", "      - make test\n      - make lint\n")],
    "ci-clash": [("ci.yml", "      - make test\n", "      - make test-all\n")],
    "script": [("scripts/run.sh", "echo run\n", "echo run\necho my step\n")],
}


RANDOM_REPOS = [f"random-{seed}" for seed in range(3)]


def random_edits(repo: Path, seed: int) -> None:
    """Line edits anywhere (some next to the template's changes): copier's merge must be matched."""
    rng = random.Random(seed)
    for rel in ("src/beta/main.py", "README.md", "notes.md", "scripts/run.sh"):
        path = repo / rel
        lines = path.read_text().splitlines(keepends=True)
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(len(lines))
            kind = rng.choice(["replace", "insert", "delete"])
            if kind == "replace":
                lines[i] = f"# edited {seed}-{i}\n"
            elif kind == "insert":
                lines.insert(i, f"# inserted {seed}-{i}\n")
            elif len(lines) > 1:
                del lines[i]
        path.write_text("".join(lines))


def _build_fleet(root: Path, tpl: Path) -> Path:
    fleet = root / "fleet"
    make_repo(fleet / "pristine", tpl, project_name="Alpha")
    for seed, name in enumerate(RANDOM_REPOS):
        random_edits(make_repo(fleet / name, tpl, project_name="Beta"), seed)
        commit_all(fleet / name, "random edits")
    for name, edits in USER_EDITS.items():
        repo = make_repo(fleet / name, tpl, project_name="Beta")
        for rel, old, new in edits:
            edit(repo, rel, old, new)
        commit_all(repo, "user edits")
    deleted = make_repo(fleet / "deleted", tpl, project_name="Beta")
    (deleted / "notes.md").unlink()
    commit_all(deleted, "we do not keep notes")
    added = make_repo(fleet / "added", tpl, project_name="Beta")
    (added / "extra.txt").write_text("my own file\n")
    (added / "docs").mkdir()
    (added / "docs/guide.md").write_text("# My own guide\n")
    commit_all(added, "our docs")
    kept = make_repo(fleet / "kept", tpl, project_name="Beta")
    edit(kept, "old.txt", append="but we still need it\n")
    commit_all(kept, "we use old.txt")
    # a repository holding two sub-projects of the template
    multi = make_repo(fleet / "multi", tpl, project_name="Gamma")
    make_repo(multi / "service", tpl, project_name="Delta")
    shutil.rmtree(multi / "service/.git")
    commit_all(multi, "second sub-project")
    make_repo(fleet / "current", tpl, vcs_ref="v2.0.0", project_name="Epsilon")
    # repositories that must be skipped
    dirty = make_repo(fleet / "dirty", tpl, project_name="Beta")
    edit(dirty, "README.md", append="uncommitted\n")
    broken = make_repo(fleet / "broken", tpl, project_name="Beta")
    (broken / ".copier-answers.yml").write_text("_commit: v1.0.0\n_src_path: [unclosed\n")
    commit_all(broken, "oops")
    unknown = make_repo(fleet / "unknown-ref", tpl, project_name="Beta")
    edit(unknown, ".copier-answers.yml", "_commit: v1.0.0", "_commit: v9.9.9")
    commit_all(unknown, "hand edited")
    nogit = make_repo(fleet / "not-git", tpl, project_name="Beta")
    shutil.rmtree(nogit / ".git")
    return fleet


@pytest.fixture(scope="session")
def fixture_world(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fleet-world")
    tpl = make_template(root)
    return tpl, _build_fleet(root, tpl)


@pytest.fixture
def fleet(fixture_world: tuple[Path, Path], tmp_path: Path) -> Path:
    """A fresh copy of the test fleet (the template stays shared: it is only read)."""
    return Path(shutil.copytree(fixture_world[1], tmp_path / "fleet", symlinks=True))


@pytest.fixture
def reference(fixture_world: tuple[Path, Path], tmp_path: Path) -> Path:
    """Another copy, for copier's own update."""
    return Path(shutil.copytree(fixture_world[1], tmp_path / "reference", symlinks=True))


__all__ = ["git"]
