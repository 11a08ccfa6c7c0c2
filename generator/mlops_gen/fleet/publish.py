"""After a hosted repository's update commit: push its branch and keep exactly one update
request open for it, like a dependency bot would.

- no commit (up to date, skipped): no branch, no request;
- the branch is pushed with a lease (`push`); a remote that refuses it (protected branch, hook)
  fails this repository only;
- a request for the same branch is updated in place (or left alone when nothing changed);
  otherwise one is opened against the default branch. Open requests of older template
  versions are closed with a comment linking the new one.
"""

from __future__ import annotations

from packaging.version import InvalidVersion, Version

from mlops_gen.fleet.engine import RepoResult, UnitResult
from mlops_gen.fleet.hosts import HostError, Proposal, UpdateRequest
from mlops_gen.fleet.push import push_branch
from mlops_gen.fleet.remote import UPDATE_PREFIX, Hosted, git_env

LABEL = "template-update"
CONFLICT_LABEL = "template-conflicts"


def publish(hosted: Hosted, result: RepoResult, open_pr: bool) -> None:
    """Push and (with `open_pr`) open/update/supersede; says what happened in `result`."""
    if result.status == "failed":
        return
    if not result.commit:
        result.request_state = "skipped"
        return
    pushed = push_branch(hosted.path, result.branch, result.commit, git_env(hosted.host, hosted.repo.clone_url))
    if pushed.state in ("refused", "failed"):
        result.status, result.reason, result.request_state = "failed", pushed.reason, "failed"
        return
    result.pushed = pushed.state
    if not open_pr or hosted.host is None:
        return
    try:
        request, state, closed = reconcile(hosted, proposal(result, hosted.repo.default_branch),
                                           unchanged=pushed.state == "unchanged")
    except HostError as error:
        result.status, result.reason, result.request_state = "failed", str(error), "failed"
        return
    result.request_url, result.request_state, result.superseded = request.url, state, closed


def reconcile(hosted: Hosted, wanted: Proposal, *, unchanged: bool) -> tuple[UpdateRequest, str, list[str]]:
    host, repo = hosted.host, hosted.repo
    open_now = host.open_requests(repo)
    same = next((r for r in open_now if r.branch == wanted.branch), None)
    if same is None:
        request, state = host.create(repo, wanted), "opened"
    elif unchanged and same.title == wanted.title and same.body.strip() == wanted.body.strip():
        request, state = same, "unchanged"
    else:
        request, state = host.update(repo, same, wanted), "updated"
    closed = []
    for old in open_now:
        if old.branch != wanted.branch and _older(old.branch, wanted.branch):
            host.close(repo, old, f"Superseded by {request.url} ({wanted.title.lower()}).")
            closed.append(old.url)
    return request, ("superseded" if closed and state == "opened" else state), closed


def _older(branch: str, than: str) -> bool:
    """An update branch of an older template version (a newer one is never closed by an older run)."""
    if not branch.startswith(UPDATE_PREFIX):
        return False
    try:
        return Version(branch.removeprefix(UPDATE_PREFIX)) < Version(than.removeprefix(UPDATE_PREFIX))
    except InvalidVersion:
        return False


def proposal(result: RepoResult, base: str) -> Proposal:
    units = [u for u in result.units if u.status in ("updated", "conflicted")]
    targets = sorted({u.target for u in units})
    conflicts = sorted({p for u in units for p in u.conflicts if p not in u.kept})
    return Proposal(branch=result.branch, base=base, title=f"Update template to {', '.join(targets)}",
                    body=body(units, conflicts), conflicts=bool(conflicts),
                    labels=[LABEL, *([CONFLICT_LABEL] if conflicts else [])])


def body(units: list[UnitResult], conflicts: list[str]) -> str:
    """The plan, as a reviewer reads it: conflicts first, then what changes."""
    lines = []
    if conflicts:
        lines += ["**Conflicts to resolve** (look for `<<<<<<< before updating` markers) in:",
                  *(f"- `{p}`" for p in conflicts), ""]
    lines += [f"Template update for `{u.answers_file}`: `{u.template}` {u.current} → **{u.target}**" for u in units]
    sections = [("Added", "added"), ("Changed", "changed"), ("Removed", "removed"),
                ("Kept: edited here, deleted by the template (delete if unused)", "kept"),
                ("Merged structurally (YAML), no conflict", "yaml_merged")]
    for title, name in sections:
        paths = sorted({p for u in units for p in getattr(u, name)})
        if paths:
            lines += ["", f"### {title} ({len(paths)})", *(f"- `{p}`" for p in paths)]
    if not conflicts:
        lines += ["", "No conflicts."]
    lines += ["", "---", "Opened by `mlops-gen fleet update --open-pr`: a later run for this version updates this "
              "request, a newer template version closes it."]
    return "\n".join(lines) + "\n"
