"""What the user sees: a rich progress bar while repositories are processed (without a terminal:
a line per repository and a heartbeat line), a summary table, totals, and the JSON report
(`--report FILE`)."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from mlops_gen.fleet.engine import SEVERITY, RepoResult
from mlops_gen.localci.report import HEARTBEAT, elapsed, heartbeat, one_line, say

STYLES = {"failed": "bold red", "skipped": "yellow", "drifted": "magenta", "conflicted": "red",
          "updated": "green", "planned": "cyan", "clean": "green", "up-to-date": "dim"}


@contextmanager
def progress(console: Console, total: int, verb: str, workers: int = 1,
             heartbeat_every: float = HEARTBEAT) -> Iterator:
    """Yields `advance(result)`. On a terminal a bar is drawn (on stderr) and disappears when
    done; otherwise each repository is a line as it finishes, and every `heartbeat_every`
    seconds a line says how many are done and running, so a CI log never goes quiet."""
    bar = Progress(TextColumn(f"[bold]{verb}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   TextColumn("{task.description}"), console=console, transient=True,
                   disable=not console.is_terminal)
    started = time.monotonic()
    state = {"done": 0, "shown": started}
    lock = threading.Lock()

    def beat(now: float) -> None:
        with lock:
            if now - state["shown"] < heartbeat_every * 0.999:
                return
            state["shown"] = now
            done = state["done"]
        running = min(max(workers, 1), total - done)
        say(console, Text(f"[fleet] {verb}: {done}/{total} done, {running} running, "
                          f"{total - done - running} waiting ({elapsed(now - started)})", style="cyan"))

    with bar, heartbeat(beat, 0 if console.is_terminal else heartbeat_every):
        task = bar.add_task("", total=total)

        def advance(result: RepoResult) -> None:
            bar.update(task, advance=1, description=Path(result.path).name)
            if console.is_terminal:
                return
            now = time.monotonic()
            with lock:
                state["done"] += 1
                state["shown"] = now
                done = state["done"]
            line = f"[fleet] {done}/{total} {result.path}: {result.status} ({elapsed(now - started)})"
            if result.status in ("failed", "skipped") and result.reason:
                line += f": {one_line(result.reason, 200)}"
            say(console, Text(line, style=STYLES.get(result.status, "")))

        yield advance


def _files(values: Iterable[str], limit: int = 4) -> str:
    values = list(values)
    shown = escape(", ".join(values[:limit]))
    return shown + (f" (+{len(values) - limit})" if len(values) > limit else "")


def table(results: list[RepoResult], mode: str, root: Path | None = None) -> Table:
    t = Table(title=f"mlops-gen fleet {mode}", show_lines=False, expand=False)
    t.add_column("repository", overflow="fold")
    t.add_column("status")
    t.add_column("version")
    if mode == "drift":
        t.add_column("drifted files", overflow="fold")
    else:
        t.add_column("+ / ~ / -", justify="right")
        t.add_column("conflicts / notes")
    requests = any(r.request_state or r.pushed for r in results)
    if requests:
        t.add_column("request", overflow="fold")
    for result in sorted(results, key=lambda r: (SEVERITY.index(r.status), r.name)):
        name = result.name
        if root is not None and not result.remote:
            try:
                name = str(Path(result.path).relative_to(root)) or "."
            except ValueError:
                pass
        for number, unit in enumerate(result.units or [None]):
            label = escape(name) if number == 0 else ""
            if unit is not None and len(result.units) > 1:
                label += f" [dim]({escape(unit.answers_file)})[/]"
            status = unit.status if unit else result.status
            if result.status == "failed":
                status = "failed"
            version = ""
            if unit and unit.current:
                version = unit.current if mode == "drift" or not unit.target or unit.target == unit.current \
                    else f"{unit.current} → {unit.target}"
            reason = result.reason if result.status in ("failed", "skipped") else ""
            reason = escape(unit.reason if unit and unit.reason else reason)
            row = [label, f"[{STYLES.get(status, '')}]{status}[/]", version]
            if mode == "drift":
                row.append(_files(unit.drifted) if unit and unit.drifted else reason)
            else:
                counts = f"{len(unit.added)} / {len(unit.changed)} / {len(unit.removed)}" if unit and (
                    status in ("updated", "conflicted", "planned")) else ""
                notes = []
                if unit and unit.conflicts:
                    notes.append(f"[red]{_files(unit.conflicts)}[/]")
                if unit and unit.yaml_merged:
                    notes.append(f"yaml-merged: {_files(unit.yaml_merged)}")
                if reason:
                    notes.append(reason)
                row += [counts, "; ".join(notes)]
            if requests:
                row.append(_request(result) if number == 0 else "")
            t.add_row(*row)
    return t


def _request(result: RepoResult) -> str:
    state = result.request_state or result.pushed
    text = f"{state} {result.request_url}".strip()
    if result.superseded:
        text += f" (closed {', '.join(result.superseded)})"
    return escape(text)


def totals(results: list[RepoResult]) -> str:
    counts = Counter(r.status for r in results)
    parts = [f"{counts[s]} {s}" for s in SEVERITY if counts[s]]
    text = f"{len(results)} repositories: " + ", ".join(parts)
    branches = Counter(r.branch for r in results if r.branch)
    for branch, count in sorted(branches.items()):
        text += f"\ncommitted on branch {branch} in {count} repositor{'y' if count == 1 else 'ies'}"
    requests = Counter(r.request_state for r in results if r.request_state)
    if requests:
        text += "\nupdate requests: " + ", ".join(f"{n} {state}" for state, n in sorted(requests.items()))
    return text


def write_json(path: Path, mode: str, target: str | None, results: list[RepoResult], seconds: float,
               requests: dict[str, int] | None = None) -> None:
    """The report; `requests` counts the API calls per host source (hosted runs)."""
    counts = Counter(r.status for r in results)
    hosted = sum(1 for r in results if r.remote)
    data = {
        "command": mode,
        "target": target,
        "seconds": round(seconds, 3),
        "summary": {s: counts[s] for s in SEVERITY if counts[s]},
        "api_requests": requests or {},
        "api_requests_per_repo": round(sum((requests or {}).values()) / hosted, 2) if hosted else None,
        "conflicts_avoided_by_yaml_merge": sum(len(u.yaml_merged) for r in results for u in r.units),
        "repos": [r.to_dict() for r in sorted(results, key=lambda r: r.path)],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
