"""Every use of copier goes through this module.

Public API first (`run_copy`, `errors`). The fleet's fast path still needs copier internals; each
private symbol is imported here, and only here, so a copier release that moves one breaks this file
and its contract test (tests/copier_contract/), run against the oldest and the newest copier that
pyproject.toml admits:

- `copier._main.Worker`: renders without tasks, and three of its private methods are overridden
  (`_render_template`, `_render_context`, `_sync_git_index_executable_bit`);
- `copier._template.Template`, `copier._subproject.Subproject`: filled from our own checkouts;
- `copier._types.LazyDict`: the type of `_copier_conf`, copied per render;
- `copier._jinja_ext.get_yield_context`: reset of `{% yield %}` state in the cached Jinja environment;
- `copier._vcs.clone`, `get_latest_tag`, `get_repo`: checkouts through copier's git handling.
"""

from __future__ import annotations

import contextlib
import copy as _copy
import io
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import copier
from copier._jinja_ext import get_yield_context
from copier._main import Worker
from copier._subproject import Subproject
from copier._template import Template
from copier._types import LazyDict
from copier._vcs import clone, get_latest_tag, get_repo
from jinja2.sandbox import SandboxedEnvironment
from plumbum import ProcessExecutionError

__all__ = ["GitError", "Renderer", "UserError", "checkout", "copy", "latest_tag", "repo_url", "template_info"]

#: An answer or template copier refuses (its message names the question).
UserError: tuple[type[Exception], ...] = (ValueError, copier.errors.UserMessageError)
#: git failed under copier (unreachable template, unknown ref).
GitError: tuple[type[Exception], ...] = (ProcessExecutionError, OSError)


@contextlib.contextmanager
def _quiet():
    """copier's notes and warnings ("No git tags found", dirty template) are noise for our users."""
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def copy(template: str | Path, dest: Path, *, data: dict, defaults: bool, vcs_ref: str | None = None,
         cleanup_on_error: bool = True) -> None:
    """`copier copy` (public API): tasks run, answers file written."""
    with _quiet():
        copier.run_copy(str(template), str(dest), data=data, defaults=defaults, vcs_ref=vcs_ref,
                        unsafe=True, quiet=True, cleanup_on_error=cleanup_on_error)


# ---- git checkouts of template versions ----------------------------------------------------------

def repo_url(url: str) -> str | None:
    """The git URL copier would clone for `url` (gh:/gl: expanded), or None when it is no repository."""
    return get_repo(url)


def latest_tag(url: str) -> str:
    """Newest PEP 440 tag of the template (copier's rule for the default ref)."""
    return get_latest_tag(get_repo(url) or url)


def checkout(url: str, ref: str, location: str) -> None:
    clone(get_repo(url) or url, ref, location=location)


def template_info(url: str, ref: str, path: str) -> tuple[str | None, str | None, Any]:
    """(commit as copier writes `_commit`, commit hash, PEP 440 version) of a checked-out version."""
    template = _template(url, ref, path)
    return template.commit, template.commit_hash, template.version


def _template(url: str, ref: str, path: str, **known: Any) -> Template:
    template = Template(url=url, ref=ref)
    template.__dict__.update(local_abspath=Path(path), vcs="git", **known)
    return template


# ---- in-process renders without tasks (fleet) ----------------------------------------------------

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


class Renderer:
    """Renders one checked-out template version many times in one process, tasks skipped."""

    def __init__(self, url: str, ref: str, path: str, commit: str, commit_hash: str, version: Any) -> None:
        self.ref = ref
        self.template = _template(url, ref, path, commit=commit, commit_hash=commit_hash, version=version)
        self._env: SandboxedEnvironment | None = None

    @property
    def config(self) -> dict:
        """The template's settings (`_tasks`, `_migrations`, ...) without the leading `_`."""
        return self.template.config_data

    @property
    def exclude(self) -> tuple[str, ...]:
        return tuple(self.template.exclude)

    def render(self, dst: Path, answers_relpath: str, *, data: dict, last_answers: dict,
               exclude: tuple[str, ...]) -> Callable[[Path], bool]:
        """Render into `dst` the way copier renders inside `copier update`; returns `_skip_if_exists`."""
        worker = _RenderWorker(dst_path=dst, answers_file=Path(answers_relpath), data=_copy.deepcopy(data),
                               defaults=True, quiet=True, overwrite=True, unsafe=True, skip_tasks=True,
                               exclude=exclude, vcs_ref=self.ref)
        subproject = Subproject(local_abspath=dst.absolute(), answers_relpath=Path(answers_relpath))
        subproject.__dict__["last_answers"] = _copy.deepcopy(last_answers)
        worker.__dict__.update(template=self.template, subproject=subproject)
        if self._env is None:
            self._env = _shared_env(worker.jinja_env)
        worker.__dict__["jinja_env"] = self._env
        with worker:
            worker.run_copy()
        return worker.match_skip
