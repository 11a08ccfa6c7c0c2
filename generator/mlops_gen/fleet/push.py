"""Push an update branch with a lease: the branch on the remote is created, or replaced only
when it still holds this tool's own commit as last seen (`--force-with-lease=<ref>:<sha>`).
A branch someone else moved (commits on top, an amended commit) is never overwritten."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlops_gen.fleet.engine import MARKER
from mlops_gen.fleet.remote import run_git


@dataclass
class Pushed:
    state: str          # pushed | unchanged | refused | failed
    reason: str = ""


def push_branch(repo: Path, branch: str, commit: str, env: dict[str, str]) -> Pushed:
    ref = f"refs/heads/{branch}"
    listing = run_git(repo, env, "ls-remote", "origin", ref)
    if listing.returncode:
        return Pushed("failed", f"cannot read the remote: {_reason(listing.stderr)}")
    seen = listing.stdout.split()[0] if listing.stdout.strip() else ""
    if seen:
        fetched = run_git(repo, env, "fetch", "-q", "--depth=2", "origin", f"+{ref}:refs/fleet/seen")
        if fetched.returncode:
            return Pushed("failed", f"cannot fetch {branch}: {_reason(fetched.stderr)}")
        tip = run_git(repo, {}, "log", "-1", "--format=%B%x00%T%x00%P", "refs/fleet/seen").stdout.split("\0")
        if MARKER not in tip[0]:
            return Pushed("refused", f"{branch} on the remote has commits not made by mlops-gen: not overwritten")
        ours = run_git(repo, {}, "log", "-1", "--format=%T%x00%P", commit).stdout.strip().split("\0")
        if [tip[1].strip(), tip[2].strip()] == ours:
            return Pushed("unchanged")
    proc = run_git(repo, env, "push", "--porcelain", f"--force-with-lease={ref}:{seen}", "origin", f"{commit}:{ref}")
    if proc.returncode:
        return Pushed("failed", f"push of {branch} rejected: {_reason(proc.stdout + proc.stderr)}")
    return Pushed("pushed")


def _reason(text: str) -> str:
    """The remote's own words when it gave any (a hook's message, `[remote rejected] (...)`)."""
    remote = [line.removeprefix("remote:").strip() for line in text.splitlines() if line.startswith("remote:")]
    remote = [line for line in remote if line]
    rejected = re.findall(r"\[(?:remote )?rejected\][^\n]*", text)
    parts = remote[-1:] + rejected[:1]
    if parts:
        return "; ".join(parts)
    lines = [line.strip() for line in text.splitlines() if line.strip() and line.strip() != "Done"]
    return lines[-1] if lines else "no output"
