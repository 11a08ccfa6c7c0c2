"""`mlops-gen fleet plan|update|drift ROOT...`: template updates across many repositories."""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from pathlib import Path

import click
from rich.console import Console

from mlops_gen.fleet.discover import ANSWERS_GLOB, Repo, discover
from mlops_gen.fleet.engine import Job, RepoResult, run_job
from mlops_gen.fleet.gitops import valid_branch_name
from mlops_gen.fleet.render import Checkouts, TemplateError, TemplateVersion, resolve_url
from mlops_gen.fleet.report import progress, table, totals, write_json
from mlops_gen.localci.report import HEARTBEAT, elapsed, heartbeat, print_wide, say

EXIT_HELP = """
Exit status: 0 when every repository was handled (updated, conflicted, planned, up to date,
clean); 1 when any repository was skipped or failed, or (drift) differs from its template;
2 on bad usage (no answers file found, bad option).
"""


def _roots(f: Callable) -> Callable:
    f = click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the full result as JSON to FILE.")(f)
    f = click.option("--jobs", "-j", type=click.IntRange(min=1), default=min(4, os.cpu_count() or 1),
                     show_default=True, help="Repositories processed in parallel (processes).")(f)
    return click.argument("roots", nargs=-1, required=True,
                          type=click.Path(exists=True, path_type=Path))(f)


def _target(f: Callable) -> Callable:
    f = click.option("--yaml-merge/--no-yaml-merge", default=True, show_default=True,
                     help="Merge YAML files structurally where the textual merge conflicts.")(f)
    return click.option("--to", "to_ref", metavar="REF",
                         help="Template version (tag, branch, commit). Default: the newest tag.")(f)


@click.group(epilog=EXIT_HELP)
def fleet() -> None:
    """Plan, apply and check template updates across many repositories.

    ROOT is a folder searched for .copier-answers*.yml files (several per repository
    allowed) or a text file listing repository paths, one per line.
    """


@fleet.command(epilog=EXIT_HELP)
@_roots
@_target
def plan(roots: tuple[Path, ...], to_ref: str | None, jobs: int, report_path: Path | None,
         yaml_merge: bool) -> None:
    """Show what `update` would do: versions, files added/changed/removed, predicted conflicts.
    Nothing is written to the repositories."""
    _execute("plan", roots, to_ref, jobs, report_path, yaml_merge=yaml_merge)


@fleet.command(epilog=EXIT_HELP)
@_roots
@_target
@click.option("--branch", metavar="NAME", help="Branch to commit to. Default: template-update/<version>.")
@click.option("--switch/--no-switch", default=True, show_default=True,
              help="Check the new branch out (--no-switch leaves the current branch checked out).")
def update(roots: tuple[Path, ...], to_ref: str | None, jobs: int, report_path: Path | None,
           yaml_merge: bool, branch: str | None, switch: bool) -> None:
    """Apply copier's update to each repository, on a new branch, in one commit.

    The user's changes since the last render are replayed on the new render (the same tree
    as `copier update --defaults --conflict inline`); conflicted files are listed in the
    commit message. Dirty repositories, broken answers files and unknown refs are skipped
    with their reason; the user's branch and working tree are never modified on failure.
    """
    if branch is not None and not valid_branch_name(branch):
        raise click.BadParameter(f"{branch!r} is not a valid branch name", param_hint="--branch")
    _execute("update", roots, to_ref, jobs, report_path, yaml_merge=yaml_merge, branch=branch, switch=switch)


@fleet.command(epilog=EXIT_HELP)
@_roots
@click.option("--diff", "show_diff", is_flag=True, help="Also print a unified diff (template -> repo) per file.")
def drift(roots: tuple[Path, ...], jobs: int, report_path: Path | None, show_diff: bool) -> None:
    """List the files in which each repository differs from a fresh render of its recorded
    template version and answers (like `cruft diff --exit-code`). Exit 1 when any drifted."""
    _execute("drift", roots, None, jobs, report_path, show_diff=show_diff)


def _versions(repo: Repo, checkouts: Checkouts, to_ref: str | None, mode: str) -> dict:
    found: dict[str, tuple[TemplateVersion, TemplateVersion | None] | str] = {}
    if repo.error or (mode != "drift" and not repo.is_git):
        return found
    for unit in repo.units:
        if unit.error:
            continue
        url = resolve_url(unit.src_path, unit.root)
        try:
            old = checkouts.get(url, unit.commit)
            new = None if mode == "drift" else checkouts.get(url, to_ref or checkouts.latest(url))
            found[unit.label] = (old, new)
        except TemplateError as error:
            found[unit.label] = str(error)
    return found


def _run_all(jobs: list[Job], workers: int, console: Console, verb: str) -> list[RepoResult]:
    results: list[RepoResult] = []
    workers = min(workers, len(jobs))
    if workers <= 1:
        with progress(console, len(jobs), verb, workers=1) as advance:
            for job in jobs:
                results.append(run_job(job))
                advance(results[-1])
        return results
    # fork: workers start with copier imported and the template checkouts known. All workers are
    # spawned while submitting, before the progress bar starts its thread.
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = {pool.submit(run_job, job): job for job in jobs}
        with progress(console, len(jobs), verb, workers=workers) as advance:
            for future in as_completed(futures):
                try:
                    results.append(future.result())
                except Exception as error:
                    results.append(RepoResult(path=str(futures[future].repo.path), status="failed",
                                              reason=f"worker process failed: {type(error).__name__}: {error}"))
                advance(results[-1])
    return results


@contextmanager
def _checking_out(console: Console, count: int) -> Iterator[None]:
    """A spinner on a terminal; otherwise a line, and a heartbeat line every 10 s."""
    text = f"Checking out template versions for {count} repositories..."
    if console.is_terminal:
        with console.status(text):
            yield
        return
    say(console, text)
    started = state = time.monotonic()

    def beat(now: float) -> None:
        nonlocal state
        if now - state >= HEARTBEAT * 0.999:
            state = now
            say(console, f"[fleet] still checking out template versions ({elapsed(now - started)})")

    with heartbeat(beat, HEARTBEAT):
        yield


def _execute(mode: str, roots: tuple[Path, ...], to_ref: str | None, workers: int,
             report_path: Path | None, *, yaml_merge: bool = True, branch: str | None = None,
             switch: bool = True, show_diff: bool = False) -> None:
    start = time.perf_counter()
    err = Console(stderr=True)
    repos = discover(list(roots))
    if not repos:
        raise click.UsageError(f"no {ANSWERS_GLOB} found under {', '.join(map(str, roots))}")
    verb = {"plan": "Planning", "update": "Updating", "drift": "Checking"}[mode]
    with tempfile.TemporaryDirectory(prefix="mlops-gen-fleet-") as cache:
        checkouts = Checkouts(Path(cache))
        with _checking_out(err, len(repos)):
            jobs = [Job(mode=mode, repo=repo, versions=_versions(repo, checkouts, to_ref, mode), branch=branch,
                        switch=switch, yaml_merge=yaml_merge, diff=show_diff) for repo in repos]
        results = _run_all(jobs, workers, err, verb)
    common = Path(os.path.commonpath([r.path for r in results])) if results else None
    if show_diff:
        for result in sorted(results, key=lambda r: r.path):
            for unit in result.units:
                for path, text in unit.diffs.items():
                    click.echo(f"== {result.path} {path}\n{text}", nl=False)
    out = Console()
    print_wide(out, table(results, mode, common if common and len(results) > 1 else None))
    say(out, totals(results))
    if report_path is not None:
        write_json(report_path, mode, to_ref, results, time.perf_counter() - start)
    bad = {"failed", "skipped"} | ({"drifted"} if mode == "drift" else set())
    sys.exit(1 if any(r.status in bad for r in results) else 0)
