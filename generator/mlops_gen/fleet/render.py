"""Template versions: one checkout per (template, ref), shared by every repository and worker.

`copier update` clones the template three or four times per repository and runs the template's
tasks in its throw-away renders. Here the parent process checks each version out once (with
copier's own `clone`, so remote templates go through copier's mirror cache); worker processes
render from those checkouts through copier's `Worker` in-process, tasks skipped, with the
template object and its Jinja environment (compiled templates) reused across renders.
"""

from __future__ import annotations

import copy
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from copier._jinja_ext import SandboxedEnvironment, get_yield_context
from copier._main import Worker
from copier._subproject import Subproject
from copier._template import Template
from copier._types import LazyDict
from copier._vcs import clone, get_latest_tag, get_repo
from packaging.version import Version
from plumbum import ProcessExecutionError

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
                self._latest[url] = get_latest_tag(get_repo(url) or url)
            except (ProcessExecutionError, OSError) as error:
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
        expanded = get_repo(url)
        if not expanded:
            return TemplateError(f"template {url} is not a git repository (updates need git tags)")
        location = tempfile.mkdtemp(prefix="tpl-", dir=self.cache_dir)
        try:
            clone(expanded, ref, location=location)
            template = Template(url=url, ref=ref)
            template.__dict__.update(local_abspath=Path(location), vcs="git")
            version = template.version
            return TemplateVersion(url=url, ref=ref, path=location, commit=template.commit or ref,
                                   commit_hash=template.commit_hash or "",
                                   version=str(version) if version else None)
        except (ProcessExecutionError, OSError, ValueError) as error:
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

class _RenderWorker(Worker):
    """copier's Worker for throw-away renders.

    - the destination is never a git repository, so the per-file `git config` probe is skipped;
    - the render context is built once per render instead of once per rendered string (copier
      rebuilds it ~500 times per render of this repository's template): answers no longer change
      once rendering starts. Each caller still gets its own copy, `_copier_conf` included,
      since copier mutates it (see `Worker.answers_relpath`).
    """

    def _sync_git_index_executable_bit(self, dst_relpath: Path, src_mode: int) -> None:
        return None

    def _render_template(self) -> None:
        self.__dict__["_frozen_context"] = super()._render_context()
        try:
            super()._render_template()
        finally:
            del self.__dict__["_frozen_context"]

    def _render_context(self) -> Any:
        frozen = self.__dict__.get("_frozen_context")
        if frozen is None:
            return super()._render_context()
        context = dict(frozen)
        conf = frozen["_copier_conf"]
        context["_copier_conf"] = copied = LazyDict(conf._pending)
        copied._done = dict(conf._done)
        return context


# Per process, keyed by the version (its checkout path included: each run has its own checkouts).
_templates: dict[TemplateVersion, Template] = {}
_envs: dict[TemplateVersion, SandboxedEnvironment] = {}


def template_object(tv: TemplateVersion) -> Template:
    """One copier `Template` per version per process, its properties filled from the checkout."""
    if tv not in _templates:
        template = Template(url=tv.url, ref=tv.ref)
        template.__dict__.update(local_abspath=Path(tv.path), vcs="git", commit=tv.commit,
                                 commit_hash=tv.commit_hash, version=tv.parsed_version)
        _templates[tv] = template
    return _templates[tv]


class _Literal:
    """A template without Jinja syntax: renders to itself (most path parts and answers)."""

    def __init__(self, source: str) -> None:
        self.source = source

    def render(self, *args: Any, **kwargs: Any) -> str:
        return self.source


def _shared_env(env: SandboxedEnvironment) -> SandboxedEnvironment:
    """Make one Worker's Jinja environment reusable by every render of the same version.

    copier compiles every path part, question default and validator with `from_string`, anew
    for each render (about 500 compilations per render of this repository's template): those
    are cached by source here, and sources without Jinja syntax are not rendered at all (Jinja
    would return them unchanged). Jinja already caches file templates per environment. copier's
    `{% yield %}` support resets its per-environment state when a template is compiled; a
    cached template is not recompiled, so the reset is done on every lookup instead.
    """
    compile_string, load_template = env.from_string, env.get_template
    cache: dict[str, Any] = {}
    markers = [m for m in (env.block_start_string, env.variable_start_string, env.comment_start_string,
                           env.line_statement_prefix, env.line_comment_prefix) if m]

    def reset_yield() -> None:
        context = get_yield_context(env)
        context.yield_name = context.yield_iterable = None

    def from_string(source: Any, globals: Any = None, template_class: Any = None) -> Any:
        reset_yield()
        if globals is not None or template_class is not None:
            return compile_string(source, globals, template_class)
        if source not in cache:
            literal = isinstance(source, str) and not any(m in source for m in markers) and (
                env.keep_trailing_newline or not source.endswith("\n"))
            cache[source] = _Literal(source) if literal else compile_string(source)
        return cache[source]

    def get_template(name: Any, parent: Any = None, globals: Any = None) -> Any:
        reset_yield()
        return load_template(name, parent, globals)

    env.from_string = from_string  # type: ignore[method-assign]
    env.get_template = get_template  # type: ignore[method-assign]
    return env


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
    template = template_object(tv)
    with tempfile.TemporaryDirectory(prefix="render-", dir=SCRATCH) as tmp:
        dst = Path(tmp, folder_name)
        worker = _RenderWorker(dst_path=dst, answers_file=Path(answers_relpath), data=copy.deepcopy(data),
                               defaults=True, quiet=True, overwrite=True, unsafe=True, skip_tasks=True,
                               exclude=exclude, vcs_ref=tv.ref)
        subproject = Subproject(local_abspath=dst.absolute(), answers_relpath=Path(answers_relpath))
        subproject.__dict__["last_answers"] = copy.deepcopy(last_answers or {})
        worker.__dict__.update(template=template, subproject=subproject)
        if tv not in _envs:
            _envs[tv] = _shared_env(worker.jinja_env)
        worker.__dict__["jinja_env"] = _envs[tv]
        with worker:
            worker.run_copy()
        return Render(files=read_tree(dst), match_skip=worker.match_skip, exclude=tuple(template.exclude))


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
