"""Plan, update or check one repository. Runs in worker processes: never raises, always returns
a `RepoResult` saying what happened and why."""

from __future__ import annotations

import difflib
import os
import time
import traceback
from dataclasses import asdict, dataclass, field

from mlops_gen.fleet import gitops
from mlops_gen.fleet.discover import Repo, Unit
from mlops_gen.fleet.merge import Outcome, merge_trees
from mlops_gen.fleet.render import FileEntry, TemplateVersion, read_entry, render, renderer

# Repository statuses, worst first (a repository takes the worst status of its sub-projects).
SEVERITY = ["failed", "skipped", "drifted", "conflicted", "updated", "planned", "clean", "up-to-date"]


@dataclass
class UnitResult:
    answers_file: str
    template: str = ""
    current: str = ""
    target: str = ""
    status: str = ""
    reason: str = ""
    added: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    conflicts: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    yaml_merged: list[str] = field(default_factory=list)
    drifted: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)      # drift --diff: path -> unified diff


@dataclass
class RepoResult:
    path: str
    status: str = ""
    reason: str = ""
    branch: str = ""
    commit: str = ""
    seconds: float = 0.0
    units: list[UnitResult] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Job:
    """Everything a worker needs, picklable. `versions[label]` is (old, new) or a skip reason."""

    mode: str                                    # plan | update | drift
    repo: Repo
    versions: dict[str, tuple[TemplateVersion, TemplateVersion | None] | str]
    branch: str | None = None                    # update: explicit branch name
    switch: bool = True                          # update: check the new branch out
    yaml_merge: bool = True
    diff: bool = False                           # drift: keep a unified diff per drifted file


def run_job(job: Job) -> RepoResult:
    start = time.perf_counter()
    result = RepoResult(path=str(job.repo.path))
    try:
        _run(job, result)
    except Exception as error:
        result.status, result.reason = "failed", f"{type(error).__name__}: {error}"
        result.units = result.units or [UnitResult(answers_file=u.label, status="failed") for u in job.repo.units]
        if not str(error):
            result.reason += traceback.format_exc(limit=-1).strip().splitlines()[-1]
    result.seconds = round(time.perf_counter() - start, 3)
    if not result.status:
        statuses = [u.status for u in result.units] or ["skipped"]
        result.status = min(statuses, key=SEVERITY.index)
        if result.status == "skipped" and not result.reason:
            result.reason = "; ".join(u.reason for u in result.units if u.status == "skipped")
    return result


def _skip(result: RepoResult, repo: Repo, reason: str) -> None:
    result.status, result.reason = "skipped", reason
    result.units = [UnitResult(answers_file=u.label, status="skipped", reason=reason) for u in repo.units]


def _run(job: Job, result: RepoResult) -> None:
    repo = job.repo
    if repo.error:
        return _skip(result, repo, repo.error)
    if job.mode != "drift":
        if not repo.is_git:
            return _skip(result, repo, "not a git repository")
        base = gitops.head(repo.path)
        if base is None:
            return _skip(result, repo, "repository has no commit yet")
        dirty = gitops.dirty_paths(repo.path)
        if dirty:
            more = f" (+{len(dirty) - 3} more)" if len(dirty) > 3 else ""
            return _skip(result, repo, f"uncommitted changes: {', '.join(dirty[:3])}{more}")

    # The user's tree is what git tracks (ignored files on disk are not part of it, as for copier).
    tracked = gitops.tracked_paths(repo.path) if repo.is_git else None
    overlay: dict[str, FileEntry | None] = {}      # repository path -> result of earlier units
    merged: list[UnitResult] = []                  # sub-projects with a new render to commit
    for unit in repo.units:
        ur = UnitResult(answers_file=unit.label, template=unit.src_path, current=unit.commit)
        result.units.append(ur)
        found = job.versions.get(unit.label)
        if unit.error or isinstance(found, str) or found is None:
            ur.status, ur.reason = "skipped", unit.error or found or "template not resolved"
            continue
        old, new = found
        if job.mode == "drift":
            _drift(unit, old, ur, job.diff)
            continue
        ur.target = new.commit
        if new.commit_hash == old.commit_hash:
            ur.status = "up-to-date"
            continue
        if old.parsed_version and new.parsed_version and new.parsed_version < old.parsed_version:
            ur.status, ur.reason = "skipped", f"downgrade from {old.commit} to {new.commit} refused"
            continue
        outcome = _merge_unit(unit, old, new, overlay, tracked, job.yaml_merge)
        for path, entry in outcome.result.items():
            overlay[unit.repo_path(path)] = entry
        for name, paths in outcome.summary().items():
            setattr(ur, name, [unit.repo_path(p) for p in paths])
        ur.status = "conflicted" if outcome.conflicts else ("updated" if job.mode == "update" else "planned")
        config = renderer(new).config
        if config.get("tasks") or config.get("migrations"):
            ur.reason = "the template defines _tasks/_migrations, not run here: run them on the branch"
        merged.append(ur)

    if job.mode != "update" or not overlay:
        return None
    if job.switch:
        in_the_way = [p for p, e in overlay.items() if e is not None and p not in tracked
                      and os.path.lexists(repo.path / p)]
        if in_the_way:
            for ur in merged:
                ur.status = "skipped"
                ur.reason = f"ignored file {in_the_way[0]} would be overwritten by the template's (use --no-switch)"
            return None
    branch = job.branch or f"template-update/{merged[0].target}"
    if gitops.branch_exists(repo.path, branch):
        for ur in merged:
            ur.status, ur.reason = "skipped", f"branch {branch} already exists"
        return None
    result.commit = gitops.commit_on_new_branch(repo.path, base, overlay, _message(merged), branch)
    result.branch = branch
    if job.switch:
        original = gitops.current_branch(repo.path) or base
        problem = gitops.switch(repo.path, branch, result.commit)
        if problem:  # put the user back where they were, with their files, and say what failed
            restore = gitops.switch(repo.path, original, base, force=True)
            gitops.delete_branch(repo.path, branch)
            result.branch = result.commit = ""
            result.status = "failed"
            result.reason = (f"could not check out {branch}: {problem}; "
                             + (f"left on {original} as it was, branch deleted" if not restore
                                else f"and restoring {original} failed too: {restore}; check the work tree"))
    return None


def _merge_unit(unit: Unit, old: TemplateVersion, new: TemplateVersion, overlay: dict[str, FileEntry | None],
                tracked: set[str] | None, yaml_merge: bool) -> Outcome:
    folder = unit.root.name
    new_render = render(new, folder, unit.answers_relpath, data={}, last_answers=unit.last_answers)
    # copier excludes the new version's exclusions from the old render too, so that a path the
    # new version excludes is not seen as deleted by the template.
    old_render = render(old, folder, unit.answers_relpath, data=unit.last_answers,
                        exclude=renderer(new).exclude)

    def read_user(path: str) -> FileEntry | None:
        key = unit.repo_path(path)
        if key in overlay:
            return overlay[key]
        return read_entry(unit.root / path) if tracked is None or key in tracked else None

    return merge_trees(old_render.files, new_render.files, read_user, answers_relpath=unit.answers_relpath,
                       match_skip=new_render.match_skip, yaml_merge=yaml_merge)


def _drift(unit: Unit, recorded: TemplateVersion, ur: UnitResult, diff: bool) -> None:
    fresh = render(recorded, unit.root.name, unit.answers_relpath, data=unit.last_answers)
    ur.target = recorded.commit
    for path, entry in sorted(fresh.files.items()):
        mine = read_entry(unit.root / path)
        if mine != entry:
            key = unit.repo_path(path)
            ur.drifted.append(key)
            (ur.removed if mine is None else ur.changed).append(key)
            if diff:
                ur.diffs[key] = _unified(key, entry[0], mine[0] if mine else b"")
    ur.status = "drifted" if ur.drifted else "clean"


def _unified(path: str, template: bytes, mine: bytes) -> str:
    if b"\0" in template or b"\0" in mine:
        return f"Binary file {path} differs\n"
    lines = difflib.unified_diff(template.decode(errors="replace").splitlines(keepends=True),
                                 mine.decode(errors="replace").splitlines(keepends=True),
                                 f"template/{path}", f"repo/{path}")
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _message(merged: list[UnitResult]) -> str:
    targets = sorted({ur.target for ur in merged})
    lines = [f"Update template to {', '.join(targets)}", ""]
    lines += [f"{ur.answers_file}: {ur.template} {ur.current} -> {ur.target}" for ur in merged]
    sections = [
        ("Conflicted files (resolve the '<<<<<<< before updating' markers):",
         [p for ur in merged for p in ur.conflicts if p not in ur.kept]),
        ("Kept, edited here but removed by the template (review and delete if unused):",
         [p for ur in merged for p in ur.kept]),
        ("Merged structurally (YAML), no conflict:", [p for ur in merged for p in ur.yaml_merged]),
    ]
    for title, paths in sections:
        if paths:
            lines += ["", title, *(f"- {p}" for p in sorted(paths))]
    if not any(ur.conflicts for ur in merged):
        lines += ["", "No conflicts."]
    return "\n".join(lines) + "\n\nGenerated by `mlops-gen fleet update` (copier update semantics).\n"
