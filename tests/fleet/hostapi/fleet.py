"""Hosted fleets for the host tests and the benchmark: repositories generated from the fixture
template, published as bare repositories behind the local API server."""

from __future__ import annotations

from pathlib import Path

from tests.fleet.helpers import commit_all, edit, git, make_repo, make_template
from tests.fleet.hostapi.server import FakeRepo, World

PROTECT_HOOK = """#!/bin/sh
while read old new ref; do
  case "$ref" in refs/heads/template-update/*)
    echo "GH006: Protected branch update failed for $ref." >&2; exit 1;;
  esac
done
"""


def template_with_v3(root: Path) -> Path:
    """The fixture template (v1.0.0, v2.0.0) plus v3.0.0, a release that changes nothing a
    repository holds but its answers file (`_commit`)."""
    tpl = make_template(root)
    (tpl / "CHANGELOG.md").write_text("v3: release notes only\n")
    commit_all(tpl, "v3")
    git(tpl, "tag", "v3.0.0")
    return tpl


def seed(root: Path, tpl: Path) -> dict[str, Path]:
    """Working repositories, one per situation the tests name."""
    seeds = root / "seeds"
    repos = {"pristine": make_repo(seeds / "pristine", tpl, project_name="Alpha"),
             "conflicted": make_repo(seeds / "conflicted", tpl, project_name="Beta"),
             "current": make_repo(seeds / "current", tpl, vcs_ref="v2.0.0", project_name="Gamma"),
             "other-template": make_repo(seeds / "other-template", tpl, project_name="Delta")}
    edit(repos["conflicted"], "src/beta/main.py", "    return 3\n", "    return 33  # our deploy\n")
    commit_all(repos["conflicted"], "our deploy")
    answers = repos["other-template"] / ".copier-answers.yml"
    answers.write_text(answers.read_text().replace(f"_src_path: {tpl}", "_src_path: /nonexistent/other-template"))
    commit_all(repos["other-template"], "another template")
    plain = seeds / "no-answers"
    plain.mkdir(parents=True)
    (plain / "README.md").write_text("# not generated\n")
    git(plain, "init", "-q", "-b", "main")
    commit_all(plain, "plain")
    repos["no-answers"] = plain
    return repos


def publish(world: World, host: str, owner: str, seeds: dict[str, Path], dest: Path,
            names: list[str] | None = None, copies: int = 1) -> dict[str, FakeRepo]:
    """Bare clones of `seeds` (each `copies` times, numbered when more than one) served as
    `owner`'s repositories on `host`."""
    published = {}
    for name in names or list(seeds):
        for number in range(copies):
            repo_name = name if copies == 1 else f"{name}-{number:03d}"
            bare = dest / host / f"{repo_name}.git"
            bare.parent.mkdir(parents=True, exist_ok=True)
            git(dest, "clone", "-q", "--bare", str(seeds[name]), str(bare))
            published[repo_name] = FakeRepo(owner=owner, name=repo_name, bare=bare)
            world.add(host, owner, published[repo_name])
    return published


def protect(repo: FakeRepo) -> None:
    """A pre-receive hook that refuses update branches, as a protected-branch rule would."""
    hook = repo.bare / "hooks" / "pre-receive"
    hook.write_text(PROTECT_HOOK)
    hook.chmod(0o755)


def branches(repo: FakeRepo) -> dict[str, str]:
    out = git(repo.bare, "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads")
    return dict(line.split() for line in out.splitlines())

