"""`mlops-gen fleet plan|update|drift|status ROOT...`: template updates across many repositories,
local or on a Git host."""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import click
from rich.console import Console

from mlops_gen.fleet import status as fleet_status
from mlops_gen.fleet.discover import ANSWERS_GLOB, Repo, discover
from mlops_gen.fleet.engine import Job, RepoResult, run_job
from mlops_gen.fleet.gitops import valid_branch_name
from mlops_gen.fleet.hosts import AuthError, connect, is_host_source
from mlops_gen.fleet.publish import publish
from mlops_gen.fleet.remote import URL, Hosted, cache_dir, collect, same_template
from mlops_gen.fleet.render import Checkouts, TemplateError, TemplateVersion, resolve_url
from mlops_gen.fleet.report import progress, table, totals, write_json
from mlops_gen.localci.report import HEARTBEAT, elapsed, heartbeat, print_wide, say

EXIT_HELP = """
Exit status: 0 when every repository was handled (updated, conflicted, planned, up to date,
clean); 1 when any repository was skipped or failed, or (drift) differs from its template;
2 on bad usage (no answers file found, bad option) and when a host's token is missing or refused
(nothing is pushed then).
"""


@dataclass
class Sources:
    """Where the repositories come from, and what to do with hosted ones after the update."""

    roots: tuple[str, ...]
    api_url: str | None = None
    template: str | None = None
    cache: Path | None = None
    push: bool = False
    open_pr: bool = False
    hosted: dict[str, Hosted] = field(default_factory=dict)     # cache clone path -> where it lives
    left_out: int = 0                                           # listed, but not from the template


def _roots(f: Callable) -> Callable:
    f = click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=Path),
                     help="Also write the full result as JSON to FILE.")(f)
    f = click.option("--jobs", "-j", type=click.IntRange(min=1), default=min(4, os.cpu_count() or 1),
                     show_default=True, help="Repositories processed in parallel (processes).")(f)
    f = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Clones of hosted repositories, reused and fetched by later runs. "
                          "Default: $XDG_CACHE_HOME/mlops-gen/fleet.")(f)
    f = click.option("--template", "template", metavar="URL",
                     help="Only repositories whose answers file names this template (_src_path).")(f)
    f = click.option("--api-url", metavar="URL",
                     help="API root of a self-hosted host (GitHub Enterprise Server https://HOST/api/v3, "
                          "GitLab https://HOST/api/v4, Azure DevOps Server https://HOST/COLLECTION-ROOT).")(f)
    return click.argument("roots", nargs=-1, required=True)(f)


def _target(f: Callable) -> Callable:
    f = click.option("--yaml-merge/--no-yaml-merge", default=True, show_default=True,
                     help="Merge YAML files structurally where the textual merge conflicts.")(f)
    return click.option("--to", "to_ref", metavar="REF",
                         help="Template version (tag, branch, commit). Default: the newest tag.")(f)


@click.group(epilog=EXIT_HELP)
def fleet() -> None:
    """Plan, apply and check template updates across many repositories.

    ROOT is a folder searched for .copier-answers*.yml files (several per repository
    allowed), a text file listing repository paths or clone URLs, one per line, or a host:
    github:ORG, gitlab:GROUP, azure:ORG/PROJECT, bitbucket:WORKSPACE (token in GITHUB_TOKEN,
    GITLAB_TOKEN, AZURE_DEVOPS_EXT_PAT or BITBUCKET_TOKEN). Hosted repositories whose
    .copier-answers.yml exists are shallow-cloned into --cache-dir.
    """


@fleet.command(epilog=EXIT_HELP)
@_roots
@_target
def plan(roots: tuple[str, ...], to_ref: str | None, jobs: int, report_path: Path | None,
         yaml_merge: bool, api_url: str | None, template: str | None, cache_dir: Path | None) -> None:
    """Show what `update` would do: versions, files added/changed/removed, predicted conflicts.
    Nothing is written to the repositories, nothing is pushed."""
    _execute("plan", Sources(roots, api_url, template, cache_dir), to_ref, jobs, report_path, yaml_merge=yaml_merge)


@fleet.command(epilog=EXIT_HELP)
@_roots
@_target
@click.option("--branch", metavar="NAME", help="Branch to commit to. Default: template-update/<version>.")
@click.option("--switch/--no-switch", default=True, show_default=True,
              help="Check the new branch out (--no-switch leaves the current branch checked out).")
@click.option("--push", is_flag=True, help="Hosted repositories: push the branch (with a lease: a branch "
              "someone else moved is never overwritten).")
@click.option("--open-pr", is_flag=True, help="Hosted repositories: also open one pull/merge request per "
              "repository, update it on a re-run, close older versions' requests (implies --push).")
def update(roots: tuple[str, ...], to_ref: str | None, jobs: int, report_path: Path | None,
           yaml_merge: bool, branch: str | None, switch: bool, push: bool, open_pr: bool, api_url: str | None,
           template: str | None, cache_dir: Path | None) -> None:
    """Apply copier's update to each repository, on a new branch, in one commit.

    The user's changes since the last render are replayed on the new render (the same tree
    as `copier update --defaults --conflict inline`); conflicted files are listed in the
    commit message. Dirty repositories, broken answers files and unknown refs are skipped
    with their reason; the user's branch and working tree are never modified on failure.
    Hosted repositories are updated in their cache clone; an update with nothing to change
    gets no branch and no request.
    """
    if branch is not None and not valid_branch_name(branch):
        raise click.BadParameter(f"{branch!r} is not a valid branch name", param_hint="--branch")
    sources = Sources(roots, api_url, template, cache_dir, push=push or open_pr, open_pr=open_pr)
    _execute("update", sources, to_ref, jobs, report_path, yaml_merge=yaml_merge, branch=branch, switch=switch)


@fleet.command(epilog=EXIT_HELP)
@_roots
@click.option("--diff", "show_diff", is_flag=True, help="Also print a unified diff (template -> repo) per file.")
def drift(roots: tuple[str, ...], jobs: int, report_path: Path | None, show_diff: bool, api_url: str | None,
          template: str | None, cache_dir: Path | None) -> None:
    """List the files in which each repository differs from a fresh render of its recorded
    template version and answers (like `cruft diff --exit-code`). Exit 1 when any drifted."""
    _execute("drift", Sources(roots, api_url, template, cache_dir), None, jobs, report_path, show_diff=show_diff)


@fleet.command()
@_roots
def status(roots: tuple[str, ...], jobs: int, report_path: Path | None, api_url: str | None,
           template: str | None, cache_dir: Path | None) -> None:
    """One row per repository: template version, released versions behind, the open update
    request (draft = it has conflicts), drift from its recorded version. Exit 1 when any
    repository could not be read."""
    _execute("status", Sources(roots, api_url, template, cache_dir), None, jobs, report_path)


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


def _split(roots: tuple[str, ...]) -> tuple[list[Path], list[str], list[str]]:
    """(local folders and list files, host sources, clone URLs from list files)."""
    local, hosts, urls = [], [], []
    for root in roots:
        if is_host_source(root):
            hosts.append(root)
            continue
        path = Path(root)
        if not path.exists():
            raise click.BadParameter(f"{root!r} does not exist (nor is it github:ORG, gitlab:GROUP, "
                                     "azure:ORG/PROJECT or bitbucket:WORKSPACE)", param_hint="ROOT")
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text(encoding="utf-8").splitlines()] \
            if path.is_file() else []
        listed = [ln for ln in lines if ln]
        if listed and all(URL.match(ln) for ln in listed):
            urls.extend(listed)
        else:
            local.append(path)
    return local, hosts, urls


def _hosted(sources: Sources, workers: int) -> list[Path]:
    """Clone or fetch the hosted repositories; their cache folders. A missing or refused token
    stops the run here (exit 2), before anything is pushed."""
    local, host_roots, urls = _split(sources.roots)
    if not host_roots and not urls:
        return local
    try:
        hosts = [(root, connect(root, sources.api_url)) for root in host_roots]
        found, sources.left_out = collect(hosts, urls, sources.template, cache_dir(sources.cache), workers)
    except AuthError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="ROOT") from None
    sources.hosted = {str(h.path.resolve()): h for h in found}
    return local + [h.path for h in found if not h.error]


def _of_template(repos: list[Repo], sources: Sources) -> list[Repo]:
    if not sources.template:
        return repos
    kept = [r for r in repos if any(u.src_path and same_template(u.src_path, sources.template, u.root)
                                    for u in r.units)]
    sources.left_out += len(repos) - len(kept)
    return kept


def _publish_all(results: list[RepoResult], sources: Sources, workers: int, err: Console) -> None:
    todo = [(sources.hosted[r.path], r) for r in results if r.path in sources.hosted]
    if not todo:
        return
    say(err, f"Pushing{' and opening requests' if sources.open_pr else ''} for {len(todo)} repositories...")
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda pair: publish(pair[0], pair[1], sources.open_pr), todo))


def _execute(mode: str, sources: Sources, to_ref: str | None, workers: int, report_path: Path | None, *,
             yaml_merge: bool = True, branch: str | None = None, switch: bool = True,
             show_diff: bool = False) -> None:
    start = time.perf_counter()
    err = Console(stderr=True)
    paths = _hosted(sources, workers)
    repos = _of_template(discover(paths), sources) if paths else []
    failed = [RepoResult(path=str(h.path.resolve()), status="failed", reason=h.error)
              for h in sources.hosted.values() if h.error]
    if not repos and not failed:
        if sources.hosted or sources.left_out:
            say(err, f"no repository from the template ({sources.left_out} listed have no answers file naming it)")
            sys.exit(0)
        raise click.UsageError(f"no {ANSWERS_GLOB} found under {', '.join(sources.roots)}")
    engine_mode = "drift" if mode == "status" else mode
    verb = {"plan": "Planning", "update": "Updating", "drift": "Checking", "status": "Checking"}[mode]
    with tempfile.TemporaryDirectory(prefix="mlops-gen-fleet-") as cache:
        checkouts = Checkouts(Path(cache))
        with _checking_out(err, len(repos)):
            jobs = [Job(mode=engine_mode, repo=repo, versions=_versions(repo, checkouts, to_ref, engine_mode),
                        branch=branch, switch=switch and str(repo.path) not in sources.hosted,
                        yaml_merge=yaml_merge, diff=show_diff) for repo in repos]
        results = _run_all(jobs, workers, err, verb) if jobs else []
    results += failed
    for result in results:
        if result.path in sources.hosted:
            result.remote = sources.hosted[result.path].label
    if mode == "update" and sources.push:
        _publish_all(results, sources, workers, err)
    if mode == "status":
        return _status(results, sources, workers, report_path)
    _summarise(mode, results, sources, to_ref, report_path, show_diff, time.perf_counter() - start)


def _status(results: list[RepoResult], sources: Sources, workers: int, report_path: Path | None) -> None:
    fleet_status.add_requests(results, sources.hosted, workers)
    data = fleet_status.rows(results)
    print_wide(Console(), fleet_status.table(data))
    if report_path is not None:
        fleet_status.write_json(report_path, data)
    sys.exit(1 if any(r.status in ("failed", "skipped") or r.request_state == "failed" for r in results) else 0)


def _summarise(mode: str, results: list[RepoResult], sources: Sources, to_ref: str | None,
               report_path: Path | None, show_diff: bool, seconds: float) -> None:
    common = Path(os.path.commonpath([r.path for r in results])) if results else None
    if show_diff:
        for result in sorted(results, key=lambda r: r.name):
            for unit in result.units:
                for path, text in unit.diffs.items():
                    click.echo(f"== {result.name} {path}\n{text}", nl=False)
    out = Console()
    print_wide(out, table(results, mode, common if common and len(results) > 1 else None))
    say(out, totals(results) + (f"\n{sources.left_out} listed repositories have no answers file naming the template"
                                if sources.left_out else ""))
    if report_path is not None:
        requests = {h.source: h.host.http.count for h in sources.hosted.values() if h.host}
        write_json(report_path, mode, to_ref, results, seconds, requests=requests)
    bad = {"failed", "skipped"} | ({"drifted"} if mode == "drift" else set())
    sys.exit(1 if any(r.status in bad for r in results) else 0)
