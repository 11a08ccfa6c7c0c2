"""Find the repositories of a fleet and the copier answers files inside them.

A ROOT is a folder (searched recursively for `.copier-answers*.yml`; a repository may hold
several, one per template or per sub-project) or a text file listing repository paths, one a
line (blank lines and `#` comments ignored, relative paths resolved against the file's folder).
"""

from __future__ import annotations

import fnmatch
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ANSWERS_GLOB = ".copier-answers*.yml"
ANSWERS_PATTERNS = (ANSWERS_GLOB, ".copier-answers*.yaml")
# Folders never searched: VCS data, environments, caches, build output.
PRUNE = {".git", ".hg", ".svn", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox",
         ".mypy_cache", ".pytest_cache", ".ruff_cache", ".local-ci", "build", "dist", "site-packages"}


class BadAnswers(Exception):
    """The answers file cannot drive an update; the message says why."""


@dataclass
class Unit:
    """One copier sub-project: an answers file inside a repository."""

    repo: Path                  # git top level (or the answers file's folder when not in git)
    answers_relpath: str        # answers file, relative to `subdir`
    subdir: str = ""            # sub-project folder relative to `repo` ("" = repository root)
    answers: dict = field(default_factory=dict)
    src_path: str = ""
    commit: str = ""            # `_commit` recorded at the last render
    error: str = ""             # why this unit cannot be processed ("" when fine)

    @property
    def root(self) -> Path:
        return self.repo / self.subdir if self.subdir else self.repo

    def repo_path(self, relpath: str) -> str:
        """A sub-project relative path as a repository relative (posix) path."""
        return f"{self.subdir}/{relpath}" if self.subdir else relpath

    @property
    def label(self) -> str:
        return self.repo_path(self.answers_relpath)

    @property
    def last_answers(self) -> dict:
        """What copier calls `last_answers`: public answers plus `_src_path` and `_commit`."""
        return {k: v for k, v in self.answers.items() if k in {"_src_path", "_commit"} or not k.startswith("_")}


@dataclass
class Repo:
    path: Path
    units: list[Unit] = field(default_factory=list)
    is_git: bool = True
    error: str = ""             # a repository level reason to skip (e.g. listed path missing)


def git_toplevel(path: Path) -> Path | None:
    """Nearest ancestor (or self) holding `.git` (folder or worktree file), without a subprocess."""
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _walk_answers(folder: Path) -> list[Path]:
    found = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in PRUNE)
        found.extend(Path(dirpath, f) for f in sorted(filenames) if any(fnmatch.fnmatch(f, p) for p in ANSWERS_PATTERNS))
    return found


def load_unit(repo: Path, answers_file: Path) -> Unit:
    subdir = answers_file.parent.relative_to(repo).as_posix()
    unit = Unit(repo=repo, answers_relpath=answers_file.name, subdir="" if subdir == "." else subdir)
    try:
        data = yaml.safe_load(answers_file.read_bytes())
    except (OSError, yaml.YAMLError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        unit.error = f"broken answers file {unit.label}: {first}"
        return unit
    if not isinstance(data, dict):
        unit.error = f"broken answers file {unit.label}: not a mapping"
        return unit
    unit.answers = data
    src, commit = data.get("_src_path"), data.get("_commit")
    if not isinstance(src, str) or not src.strip():
        unit.error = f"broken answers file {unit.label}: no _src_path (template location)"
    elif not isinstance(commit, str | int | float) or not str(commit).strip():
        unit.error = f"broken answers file {unit.label}: no _commit (template version)"
    else:
        unit.src_path, unit.commit = src, str(commit)
    return unit


def _listed_paths(listing: Path) -> list[Path]:
    paths = []
    for line in listing.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            path = Path(line).expanduser()
            paths.append(path if path.is_absolute() else listing.parent / path)
    return paths


def discover(roots: list[Path]) -> list[Repo]:
    """Repositories under `roots`, each with its units, in a stable order (by path)."""
    repos: dict[Path, Repo] = {}

    def repo_for(top: Path, is_git: bool) -> Repo:
        return repos.setdefault(top, Repo(path=top, is_git=is_git))

    def add_folder(folder: Path, listed: bool) -> None:
        folder = folder.resolve()
        if not folder.is_dir():
            repo_for(folder, False).error = "listed path is not a folder"
            return
        answers = _walk_answers(folder)
        if not answers and listed:
            top = git_toplevel(folder)
            repo_for(folder, top is not None).error = f"no {ANSWERS_GLOB} found"
        for file in answers:
            top = git_toplevel(file.parent)
            # Outside git: the answers file's folder stands for the (skipped) repository.
            repo = repo_for(top or file.parent, top is not None)
            unit = load_unit(repo.path, file)
            if all(u.label != unit.label for u in repo.units):
                repo.units.append(unit)

    for root in roots:
        if root.is_file():
            for path in _listed_paths(root):
                add_folder(path, listed=True)
        else:
            add_folder(root, listed=False)
    return [repos[k] for k in sorted(repos)]
