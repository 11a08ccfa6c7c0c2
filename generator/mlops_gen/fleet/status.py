"""`fleet status`: one row per repository: template version, how many released versions behind,
its open update request (and whether it is a draft, i.e. has conflicts), and drift from a fresh
render of the recorded version."""

from __future__ import annotations

import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from packaging.version import InvalidVersion, Version
from rich.markup import escape
from rich.table import Table

from mlops_gen import copier_seam
from mlops_gen.fleet.engine import RepoResult
from mlops_gen.fleet.hosts import HostError
from mlops_gen.fleet.remote import UPDATE_PREFIX, Hosted
from mlops_gen.fleet.render import resolve_url


@cache
def released(url: str) -> tuple[Version, ...]:
    """The template's PEP 440 tags, newest first (empty when it cannot be listed)."""
    proc = subprocess.run(["git", "ls-remote", "--tags", "--refs", copier_seam.repo_url(url) or url],
                          capture_output=True, text=True, check=False, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    versions = []
    for tag in re.findall(r"refs/tags/(\S+)", proc.stdout):
        try:
            versions.append(Version(tag))
        except InvalidVersion:
            continue
    return tuple(sorted(versions, reverse=True))


def behind(url: str, current: str) -> tuple[str, int | None]:
    """(newest released version, how many released versions are newer than `current`)."""
    versions = released(url)
    if not versions:
        return "", None
    try:
        mine = Version(current)
    except InvalidVersion:
        return str(versions[0]), None
    return str(versions[0]), sum(1 for v in versions if v > mine)


def add_requests(results: list[RepoResult], hosted: dict[str, Hosted], jobs: int) -> None:
    """The open update request of each hosted repository (one API call each)."""
    def look(result: RepoResult) -> None:
        where = hosted.get(result.path)
        if where is None or where.host is None:
            return
        try:
            found = [r for r in where.host.open_requests(where.repo) if r.branch.startswith(UPDATE_PREFIX)]
        except HostError as error:
            result.request_state, result.reason = "failed", str(error)
            return
        if found:
            newest = max(found, key=lambda r: r.number)
            result.request_url, result.request_state = newest.url, "draft" if newest.draft else "open"

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        list(pool.map(look, results))


def rows(results: list[RepoResult]) -> list[dict]:
    out = []
    for result in sorted(results, key=lambda r: r.name):
        for unit in result.units or []:
            latest, count = behind(resolve_url(unit.template, Path(result.path)), unit.current) \
                if unit.template else ("", None)
            out.append({"repository": result.name, "answers_file": unit.answers_file, "template": unit.template,
                        "version": unit.current, "latest": latest, "behind": count,
                        "request": result.request_url, "request_state": result.request_state,
                        "drift": unit.status, "drifted": unit.drifted, "reason": unit.reason or result.reason})
    return out


def table(data: list[dict]) -> Table:
    t = Table(title="mlops-gen fleet status")
    for column in ("repository", "version", "behind", "update request", "drift"):
        t.add_column(column, overflow="fold")
    for row in data:
        count = "?" if row["behind"] is None else str(row["behind"])
        request = f"{row['request']} ({row['request_state']})" if row["request"] else row["request_state"]
        drift = row["drift"] + (f": {len(row['drifted'])} files" if row["drifted"] else "")
        if row["reason"] and row["drift"] in ("skipped", "failed"):
            drift += f" ({row['reason']})"
        t.add_row(escape(row["repository"]), escape(row["version"]), count, escape(request), escape(drift))
    return t


def write_json(path: Path, data: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"command": "status", "repos": data}, indent=2) + "\n", encoding="utf-8")
