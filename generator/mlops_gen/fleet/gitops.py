"""The git side of a fleet update: read-only checks, and a commit on a new branch made with a
private index, so the user's branch, index and working tree are untouched until (optionally) the
finished branch is checked out."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from mlops_gen.fleet.render import SCRATCH, FileEntry

FALLBACK_IDENTITY = {"GIT_AUTHOR_NAME": "mlops-gen fleet", "GIT_AUTHOR_EMAIL": "fleet@mlops-gen.invalid",
                     "GIT_COMMITTER_NAME": "mlops-gen fleet", "GIT_COMMITTER_EMAIL": "fleet@mlops-gen.invalid"}


class GitError(Exception):
    """A git command failed; the message is its last line of stderr."""


def git(repo: Path, *args: str, stdin: bytes | None = None, env: dict | None = None,
        check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(["git", "-C", str(repo), *args], input=stdin, capture_output=True, check=False,
                          env={**os.environ, **(env or {})})
    if check and proc.returncode:
        lines = [line for line in proc.stderr.decode(errors="replace").splitlines() if line.strip()]
        raise GitError(lines[-1].strip() if lines else f"git {args[0]} failed")
    return proc


def out(repo: Path, *args: str) -> str:
    return git(repo, *args).stdout.decode().strip()


def head(repo: Path) -> str | None:
    proc = git(repo, "rev-parse", "--verify", "-q", "HEAD^{commit}", check=False)
    return proc.stdout.decode().strip() or None


def current_branch(repo: Path) -> str | None:
    proc = git(repo, "symbolic-ref", "-q", "--short", "HEAD", check=False)
    return proc.stdout.decode().strip() or None


def dirty_paths(repo: Path) -> list[str]:
    """Uncommitted changes, untracked files included (as `copier update` refuses them)."""
    lines = out(repo, "status", "--porcelain", "--untracked-files=normal").splitlines()
    return [line[3:] for line in lines if line.strip()]


def tracked_paths(repo: Path) -> set[str]:
    return set(git(repo, "ls-files", "-z").stdout.decode("utf-8", "surrogateescape").split("\0")) - {""}


def branch_exists(repo: Path, branch: str) -> bool:
    return git(repo, "show-ref", "--verify", "-q", f"refs/heads/{branch}", check=False).returncode == 0


def valid_branch_name(name: str) -> bool:
    return subprocess.run(["git", "check-ref-format", "--branch", name], capture_output=True, check=False).returncode == 0


def commit_on_new_branch(repo: Path, base: str, changes: dict[str, FileEntry | None], message: str,
                         branch: str) -> str:
    """One commit on top of `base` with `changes` (repository path -> entry, None = delete),
    published as `branch`. Uses a private index: nothing the user has checked out changes."""
    with tempfile.TemporaryDirectory(prefix="fleet-commit-", dir=SCRATCH) as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp, "index"))}
        git(repo, "read-tree", base, env=env)
        written = {path: entry for path, entry in changes.items() if entry is not None}
        if written:
            blob_paths = []
            for number, entry in enumerate(written.values()):
                blob = Path(tmp, f"blob{number}")
                blob.write_bytes(entry[0])
                blob_paths.append(str(blob))
            shas = git(repo, "hash-object", "-w", "--no-filters", "--stdin-paths",
                       stdin="\n".join(blob_paths).encode(), env=env).stdout.decode().split()
            info = "".join(f"{entry[1]:o} {sha}\t{path}\n"
                           for (path, entry), sha in zip(written.items(), shas, strict=True))
            git(repo, "update-index", "--add", "--index-info", stdin=info.encode(), env=env)
        removed = [path for path, entry in changes.items() if entry is None]
        if removed:
            git(repo, "update-index", "--force-remove", "-z", "--stdin",
                stdin=b"".join(p.encode() + b"\0" for p in removed), env=env)
        tree = git(repo, "write-tree", env=env).stdout.decode().strip()
        proc = git(repo, "commit-tree", tree, "-p", base, "-F", "-", stdin=message.encode(), check=False)
        if proc.returncode:   # no identity configured: sign as the tool rather than fail
            proc = git(repo, "commit-tree", tree, "-p", base, "-F", "-", stdin=message.encode(),
                       env=FALLBACK_IDENTITY)
        commit = proc.stdout.decode().strip()
        git(repo, "branch", "--no-track", branch, commit)
        if out(repo, "rev-parse", f"refs/heads/{branch}^{{tree}}") != tree:
            raise GitError(f"branch {branch} does not hold the tree that was written")
        return commit


def switch(repo: Path, target: str, expected: str, *, force: bool = False) -> str:
    """Check out `target` and verify that HEAD is `expected` and the index and work tree match it.

    Returns "" when they do, else what went wrong, naming the files git could not write: git
    reports a file it cannot unlink or replace (read-only folder, immutable file) on stderr but
    still exits 0, leaving the old file in the new branch's work tree."""
    proc = git(repo, "-c", f"core.hooksPath={os.devnull}", "checkout", "-q", *(["-f"] if force else []), target,
               check=False)
    complaints = [line.strip() for line in proc.stderr.decode(errors="replace").splitlines()
                  if line.startswith(("error:", "fatal:"))]
    if head(repo) != expected:
        return complaints[0] if complaints else f"HEAD is not {expected[:12]} after checking out {target}"
    mismatched = dirty_paths(repo)  # the outcome decides; git's complaints only say why
    if mismatched:
        return "; ".join(complaints[:3]) or f"files differ from {target}: {', '.join(mismatched[:5])}"
    return ""


def delete_branch(repo: Path, branch: str) -> None:
    git(repo, "branch", "-D", branch, check=False)
