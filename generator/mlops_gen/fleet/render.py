"""Template versions: one checkout per (template, ref), shared by every repository and worker.

`copier update` clones the template three or four times per repository and runs the template's
tasks in its throw-away renders. Here the parent process checks each version out once (with
copier's own `clone`, so remote templates go through copier's mirror cache); worker processes
render from those checkouts in-process, tasks skipped, with the template object and its Jinja
environment (compiled templates) reused across renders (mlops_gen.copier_seam.Renderer).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from mlops_gen import copier_seam

FileEntry = tuple[bytes, int]          # content, git mode (0o100644, 0o100755, 0o120000)
Tree = dict[str, FileEntry]            # posix path relative to the sub-project root -> entry


# Throw-away renders and merges go to memory when the machine has a tmpfs: thousands of small
# files per repository, written once and read once.
SCRATCH = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None


class TemplateError(Exception):
    """A template or ref that cannot be used; the message is the skip reason."""


@dataclass(frozen=True)
class TemplateVersion:
    """A checked-out template version: plain data, so it crosses process boundaries."""

    url: str                 # as recorded in `_src_path`
    ref: str
    path: str                # checkout folder (shared, read-only)
    commit: str              # `git describe --tags --always`, what copier writes as `_commit`
    commit_hash: str
    version: str | None      # PEP 440 version copier derives, None when the ref has none

    @property
    def parsed_version(self) -> Version | None:
        return Version(self.version) if self.version else None


def resolve_url(src_path: str, base: Path) -> str:
    """`_src_path` as copier would resolve it when run from the sub-project folder."""
    if re.match(r"^[\w+.-]+://|^git@|^gh:|^gl:", src_path) or Path(src_path).is_absolute():
        return src_path
    return str((base / src_path).resolve())


class Checkouts:
    """Check out template versions on demand, once each; remember failures as skip reasons."""

    def __init__(self, cache_dir: Path) -> None:
        self.cache_dir = cache_dir
        self._versions: dict[tuple[str, str], TemplateVersion | TemplateError] = {}
        self._latest: dict[str, str | TemplateError] = {}

    def latest(self, url: str) -> str:
        """Newest PEP 440 tag of the template (copier's rule), or HEAD when it has none."""
        if url not in self._latest:
            try:
                self._latest[url] = copier_seam.latest_tag(url)
            except copier_seam.GitError as error:
                self._latest[url] = TemplateError(f"template {url} unreachable: {_last_line(error)}")
        found = self._latest[url]
        if isinstance(found, TemplateError):
            raise found
        return found

    def get(self, url: str, ref: str) -> TemplateVersion:
        key = (url, ref)
        if key not in self._versions:
            self._versions[key] = self._checkout(url, ref)
        found = self._versions[key]
        if isinstance(found, TemplateError):
            raise found
        return found

    def _checkout(self, url: str, ref: str) -> TemplateVersion | TemplateError:
        if not copier_seam.repo_url(url):
            return TemplateError(f"template {url} is not a git repository (updates need git tags)")
        location = tempfile.mkdtemp(prefix="tpl-", dir=self.cache_dir)
        try:
            copier_seam.checkout(url, ref, location)
            commit, commit_hash, version = copier_seam.template_info(url, ref, location)
            return TemplateVersion(url=url, ref=ref, path=location, commit=commit or ref,
                                   commit_hash=commit_hash or "", version=str(version) if version else None)
        except (*copier_seam.GitError, ValueError) as error:
            text = f"{error} {getattr(error, 'stderr', '') or ''}".lower()
            if any(k in text for k in ("unknown revision", "did not match", "not a valid", "couldn't find remote ref")):
                return TemplateError(f"template ref {ref!r} not found in {url}")
            return TemplateError(f"cannot check out {url}@{ref}: {_last_line(error)}")


def _last_line(error: BaseException) -> str:
    """The last non-empty line of an error (git and copier put the cause there)."""
    text = getattr(error, "stderr", None) or str(error)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return lines[-1] if lines else type(error).__name__


# ---- worker side -------------------------------------------------------------------------

# Per process, keyed by the version (its checkout path included: each run has its own checkouts).
_renderers: dict[TemplateVersion, copier_seam.Renderer] = {}


def renderer(tv: TemplateVersion) -> copier_seam.Renderer:
    """One renderer (copier template + compiled Jinja environment) per version per process."""
    if tv not in _renderers:
        _renderers[tv] = copier_seam.Renderer(tv.url, tv.ref, tv.path, tv.commit, tv.commit_hash,
                                              tv.parsed_version)
    return _renderers[tv]


@dataclass
class Render:
    files: Tree
    match_skip: Callable[[Path], bool]     # the template's `_skip_if_exists` matcher
    exclude: tuple[str, ...]               # the template's exclusion patterns


def render(tv: TemplateVersion, folder_name: str, answers_relpath: str, *, data: dict,
           last_answers: dict | None = None, exclude: tuple[str, ...] = ()) -> Render:
    """Render `tv` the way copier renders inside `copier update`, without running tasks.

    `data` are init answers (copier's old-copy render passes the last answers here);
    `last_answers` are what copier reads from the sub-project's answers file (its new render).
    The destination folder is named `folder_name` so `_folder_name` renders as in the repo.
    """
    with tempfile.TemporaryDirectory(prefix="render-", dir=SCRATCH) as tmp:
        dst = Path(tmp, folder_name)
        version = renderer(tv)
        match_skip = version.render(dst, answers_relpath, data=data, last_answers=last_answers or {},
                                    exclude=exclude)
        return Render(files=read_tree(dst), match_skip=match_skip, exclude=version.exclude)


def read_tree(root: Path) -> Tree:
    tree: Tree = {}
    if not root.exists():
        return tree
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root).replace(os.sep, "/")
            tree[rel] = read_entry(Path(full))
    return tree


def read_entry(path: Path) -> FileEntry | None:
    """A file as git sees it, or None when absent (or a folder)."""
    if path.is_symlink():
        return os.readlink(path).encode(), 0o120000
    try:
        mode = path.stat().st_mode
        if not os.path.isfile(path):
            return None
        return path.read_bytes(), 0o100755 if mode & 0o111 else 0o100644
    except (FileNotFoundError, NotADirectoryError):
        return None
