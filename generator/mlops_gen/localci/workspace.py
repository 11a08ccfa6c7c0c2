"""Where a local CI run happens: a private copy of the repository, the git facts the services derive their predefined variables from, and clean-up of every
process the build left behind.

The copy is a `git clone --shared` of the user's repository (cheap: objects are borrowed, not
copied) with the working tree's uncommitted and untracked (not ignored) files laid over it,
so a run tests exactly what the user sees, inside a real git checkout, and never writes to
the user's tree. Outside git, the tree is copied without caches and virtualenvs.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

RUN_MARKER = "MLOPS_GEN_CI_RUN"
STEP_MARKER = "MLOPS_GEN_CI_STEP"
SKIP_DIRS = {".git", ".local-ci", ".venv", "venv", "__pycache__", ".mypy_cache", ".pytest_cache",
             ".ruff_cache", "node_modules", ".tox", ".nox"}


def _git(repo: Path, *args: str) -> str | None:
    proc = subprocess.run(["git", "-C", str(repo), *args], check=False, capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else None


@dataclass
class GitInfo:
    """What the services know about the commit being built."""

    is_repo: bool
    sha: str
    branch: str
    tag: str
    repo_name: str
    remote_url: str
    message: str
    author: str
    author_email: str
    default_branch: str = "main"  # origin's HEAD: what pull requests target

    @property
    def short_sha(self) -> str:
        return self.sha[:7]

    @classmethod
    def read(cls, repo: Path) -> GitInfo:
        top = _git(repo, "rev-parse", "--show-toplevel")
        sha = _git(repo, "rev-parse", "HEAD") if top else None
        if not top or not sha:
            return cls(False, "0" * 40, "main", "", repo.resolve().name, "", "", "", "")
        remote = _git(repo, "config", "--get", "remote.origin.url") or ""
        name = remote.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1] if remote else Path(top).name
        name = name.removesuffix(".git")
        return cls(
            True,
            sha,
            _git(repo, "symbolic-ref", "--short", "-q", "HEAD") or "",
            _git(repo, "describe", "--tags", "--exact-match", "HEAD") or "",
            name,
            remote,
            _git(repo, "log", "-1", "--format=%s") or "",
            _git(repo, "log", "-1", "--format=%an") or "",
            _git(repo, "log", "-1", "--format=%ae") or "",
            (_git(repo, "symbolic-ref", "-q", "--short", "refs/remotes/origin/HEAD") or "").removeprefix("origin/")
            or "main",
        )


def make_workspace(repo: Path, dest: Path) -> Path:
    """Copy `repo` (as the user sees it) into `dest`, which must not exist."""
    repo = repo.resolve()
    if _git(repo, "rev-parse", "--verify", "-q", "HEAD") and (repo / ".git").exists():
        subprocess.run(["git", "clone", "-q", "--shared", "--no-checkout", str(repo), str(dest)],
                       check=True, capture_output=True)
        head = _git(repo, "rev-parse", "HEAD")
        branch = _git(repo, "symbolic-ref", "--short", "-q", "HEAD")
        checkout = ["checkout", "-q", "-B", branch, head] if branch else ["checkout", "-q", "--detach", head]
        subprocess.run(["git", "-C", str(dest), *checkout], check=True, capture_output=True)
        listed = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "-c", "-o", "--exclude-standard"],
                                check=True, capture_output=True).stdout.decode().split("\0")
        deleted = set(subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "-d"], check=True,
                                     capture_output=True).stdout.decode().split("\0"))
        for rel in listed:
            if not rel or rel in deleted or rel.split("/", 1)[0] == ".local-ci":
                continue
            src, dst = repo / rel, dest / rel
            if src.is_symlink() or src.is_file():
                dst.parent.mkdir(parents=True, exist_ok=True)
                if dst.exists() or dst.is_symlink():
                    dst.unlink()
                shutil.copy2(src, dst, follow_symlinks=False)
        for rel in deleted - {""}:
            (dest / rel).unlink(missing_ok=True)
    else:
        shutil.copytree(repo, dest, symlinks=True, ignore=lambda _d, names: [n for n in names if n in SKIP_DIRS])
    return dest


def _marked_pids(marker: str, value: str) -> list[int]:
    needle = f"{marker}={value}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def reap(marker: str, value: str, grace: float = 2.0) -> int:
    """End every process whose environment carries `marker=value` (servers a deploy step left,
    daemons that detached with setsid): SIGTERM, then SIGKILL after `grace` seconds."""
    if not Path("/proc/self/environ").exists():
        return 0
    # Scan until a scan finds nobody new: a process caught between fork and exec (or one a dying
    # parent is starting) may not show its environment on the first pass.
    pids: list[int] = []
    for scan in range(5):
        found = [pid for pid in _marked_pids(marker, value) if pid not in pids and not _is_zombie(pid)]
        if not found and scan:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        pids += found
        time.sleep(0.02)
    deadline = time.monotonic() + grace
    while pids and time.monotonic() < deadline:
        time.sleep(0.05)
        pids = [p for p in pids if Path(f"/proc/{p}").exists() and not _is_zombie(p)]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    return len(pids)


def _is_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
