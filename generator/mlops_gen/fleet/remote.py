"""Repositories that live on a host: listed through its API (or named by clone URL in a list
file), kept only when their copier answers file names the template, and shallow-cloned into a
cache folder that later runs fetch instead of cloning again.

The token reaches git as an HTTP header in the environment (`GIT_CONFIG_*`), scoped to the clone
URL's origin: it is never part of a URL, a remote, a file in the clone or its git config."""

from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from mlops_gen.fleet.hosts import Host, HostError, RemoteRepo
from mlops_gen.fleet.render import resolve_url

ANSWERS_FILE = ".copier-answers.yml"       # what the API is asked for (copier's default name)
UPDATE_PREFIX = "template-update/"
URL = re.compile(r"^([\w+.-]+://|git@[^:]+:)")


@dataclass
class Hosted:
    """One remote repository and its clone in the cache."""

    source: str                 # github:acme, or "url" for a clone URL from a list file
    repo: RemoteRepo
    path: Path
    host: Host | None = None    # None: a bare clone URL, no API (push only)
    error: str = ""

    @property
    def label(self) -> str:
        return f"{self.host.kind}:{self.repo.name}" if self.host else self.repo.clone_url


def cache_dir(option: Path | None) -> Path:
    if option is not None:
        return option
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mlops-gen" / "fleet"


def git_env(host: Host | None, url: str) -> dict[str, str]:
    """Environment for git talking to `url`: never prompts; the host's token as a header."""
    env = {"GIT_TERMINAL_PROMPT": "0"}
    parts = urlsplit(url)
    if host is not None and parts.scheme in ("http", "https"):
        env.update({"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"http.{parts.scheme}://{parts.netloc}/.extraHeader",
                    "GIT_CONFIG_VALUE_0": host.git_header()})
    return env


def run_git(cwd: Path | None, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False,
                          env={**os.environ, **env})


def same_template(src_path: str, template: str, base: Path | None = None) -> bool:
    """Whether an answers file's `_src_path` names `template` (gh:/gl: shorthands, `.git`,
    trailing slashes and case of the host ignored)."""
    def norm(url: str) -> str:
        url = url.strip().removeprefix("git+")
        url = re.sub(r"^gh:", "https://github.com/", re.sub(r"^gl:", "https://gitlab.com/", url))
        url = re.sub(r"^git@([^:]+):", r"https://\1/", url)
        if not URL.match(url):
            url = resolve_url(url, base or Path.cwd())
        return url.rstrip("/").removesuffix(".git").lower()
    return norm(src_path) == norm(template)


def wanted(answers: str | None, template: str | None) -> bool:
    """From the host's copy of the answers file: None = no answers file; "" = present, content
    not known (checked again after cloning)."""
    if answers is None:
        return False
    if not answers or not template:
        return True
    try:
        data = yaml.safe_load(answers)
    except yaml.YAMLError:
        return True       # cloned, and reported as a broken answers file
    src = data.get("_src_path") if isinstance(data, dict) else None
    return not isinstance(src, str) or same_template(src, template)


def sync(hosted: Hosted) -> Hosted:
    """Clone (shallow, default branch only) or fetch and reset the cache copy to the default
    branch; earlier update branches of ours in the cache are dropped (the remote keeps its own)."""
    repo, path = hosted.repo, hosted.path
    env = git_env(hosted.host, repo.clone_url)
    if (path / ".git").is_dir():
        steps = [("remote", "set-url", "origin", repo.clone_url),
                 ("fetch", "-q", "--depth=1", "origin", f"+refs/heads/{repo.default_branch}:"
                  f"refs/remotes/origin/{repo.default_branch}"),
                 ("checkout", "-q", "-f", "-B", repo.default_branch, f"refs/remotes/origin/{repo.default_branch}"),
                 ("clean", "-q", "-fdx")]
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        steps = [("clone", "-q", "--depth=1", "--single-branch", "--branch", repo.default_branch, "--no-tags",
                  repo.clone_url, str(path))]
    for step in steps:
        proc = run_git(path if step[0] != "clone" else None, env, *step)
        if proc.returncode:
            hosted.error = f"git {step[0]} failed: {_last_line(proc.stderr)}"
            return hosted
    stale = run_git(path, {}, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{UPDATE_PREFIX}").stdout.split()
    if stale:
        run_git(path, {}, "branch", "-D", *stale)
    return hosted


def collect(hosts: list[tuple[str, Host]], urls: list[str], template: str | None, cache: Path,
            jobs: int) -> tuple[list[Hosted], int]:
    """Hosted repositories with their cache clones, and how many listed ones were left out (no
    answers file naming the template). Listing errors (AuthError included) propagate."""
    candidates: list[Hosted] = []
    for source, host in hosts:
        for repo in host.list_repos():
            candidates.append(Hosted(source, repo, cache / host.kind / _folder(host.api_url, repo.name), host))
    for url in urls:
        name = urlsplit(url).path.strip("/") or url
        candidates.append(Hosted("url", RemoteRepo(name=name, clone_url=url, default_branch=""),
                                 cache / "url" / _folder(url, name)))

    def check(hosted: Hosted) -> Hosted | None:
        if hosted.host is not None:
            try:
                if not wanted(hosted.host.read_file(hosted.repo, ANSWERS_FILE), template):
                    return None
            except HostError as error:
                hosted.error = str(error)
                return hosted
        elif not hosted.repo.default_branch:
            hosted.repo.default_branch = _remote_head(hosted.repo.clone_url) or "main"
        return sync(hosted)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        kept = [h for h in pool.map(check, candidates) if h is not None]
    return kept, len(candidates) - len(kept)


def _remote_head(url: str) -> str | None:
    proc = run_git(None, {"GIT_TERMINAL_PROMPT": "0"}, "ls-remote", "--symref", url, "HEAD")
    found = re.search(r"^ref: refs/heads/(\S+)\tHEAD", proc.stdout, re.M)
    return found.group(1) if found else None


def _folder(origin: str, name: str) -> str:
    """A stable cache folder per (API or URL origin, repository)."""
    netloc = urlsplit(origin).netloc or "local"
    return re.sub(r"[^\w.-]+", "_", f"{netloc}/{name}").strip("_")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
