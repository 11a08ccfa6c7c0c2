"""Azure Pipelines: the variables a run gets from what queued it.

`Build.Reason` says why the pipeline runs (IndividualCI for a push, PullRequest, Schedule,
Manual for a run queued through the REST API, ResourceTrigger for an incoming webhook); a pull
request also sets `System.PullRequest.*` and builds `refs/pull/<n>/merge`. The pipeline
derives everything else itself (its `condition:`s and `${{ if }}`s read these), so the runner
sets only what the service sets. A data or alarm run is queued through the REST API with
`runReason`: the runtime parameter when the pipeline declares one, else a queue-time variable
(the payload reaches the pipeline only through an incoming webhook resource,
`resources.webhooks`, as `${{ parameters.<webhook> }}`).
"""

from __future__ import annotations

from typing import Any

from .errors import CIUsageError
from .events import PR_NUMBER, Event, Trigger, literal_branch
from .workspace import GitInfo

REASONS = {"push": "IndividualCI", "pull_request": "PullRequest", "schedule": "Schedule", "data": "Manual",
           "alarm": "Manual"}
QUEUE_VARIABLE = "runReason"  # the one run-reason variable of the CI files' contract


def _is_none(value: Any) -> bool:
    return isinstance(value, str) and value.strip().lower() == "none"


def _first_branch(spec: Any) -> str | None:
    """The first literal branch of a `trigger:`/`pr:`/schedule branch filter (list or include form)."""
    if isinstance(spec, list):
        names = spec
    elif isinstance(spec, dict):
        branches = spec.get("branches")
        names = branches.get("include") if isinstance(branches, dict) else branches
    else:
        return None
    for name in names or []:
        if (found := literal_branch(str(name))) and "*" not in found:
            return found
    return None


def resolve(event: Event, doc: dict, file_name: str, git: GitInfo) -> Trigger:
    """The trigger of `event` for the pipeline `doc` (as written, before templates expand);
    an event the file does not declare is a CIUsageError (exit 2) saying so."""
    where = f"{file_name}"
    reason = REASONS[event.name]
    trigger = Trigger(event.name, where, predefined={"Build.Reason": reason})
    if event.name == "push":
        if _is_none(doc.get("trigger")):
            if event.explicit:
                raise CIUsageError(f"--event push: {file_name} has `trigger: none` (no push starts it)")
            trigger.notes.append("trigger: none: a push would not start this pipeline")
        trigger.declared_by = f"trigger: of {where}" if "trigger" in doc else f"{where} (CI trigger by default)"
    elif event.name == "pull_request":
        _pull_request(trigger, doc, file_name, git)
    elif event.name == "schedule":
        schedules = doc.get("schedules")
        if not isinstance(schedules, list) or not schedules:
            raise CIUsageError(f"--event schedule: {file_name} declares no schedule (no `schedules:` block)")
        first = schedules[0] if isinstance(schedules[0], dict) else {}
        trigger.declared_by = f"schedules: of {where} (cron {first.get('cron', '?')!r})"
        if branch := _first_branch(first):
            trigger.predefined.update({"Build.SourceBranch": f"refs/heads/{branch}", "Build.SourceBranchName": branch})
    else:
        _queued(trigger, event, doc, where)
    return trigger


def _pull_request(trigger: Trigger, doc: dict, file_name: str, git: GitInfo) -> None:
    pr = doc.get("pr")
    if _is_none(pr) or pr is False:
        raise CIUsageError(f"--event pull_request: {file_name} has `pr: none` (pull requests do not start it)")
    target = _first_branch(pr) or _first_branch(doc.get("trigger")) or git.default_branch
    source = git.branch or "feature"
    trigger.declared_by = f"pr: of {file_name}" if "pr" in doc else f"{file_name} (PR trigger by default)"
    trigger.predefined.update({
        "Build.SourceBranch": f"refs/pull/{PR_NUMBER}/merge",
        "Build.SourceBranchName": "merge",
        "System.PullRequest.PullRequestId": PR_NUMBER,
        "System.PullRequest.PullRequestNumber": PR_NUMBER,
        "System.PullRequest.SourceBranch": f"refs/heads/{source}",
        "System.PullRequest.SourceCommitId": git.sha,
        "System.PullRequest.SourceRepositoryURI": git.remote_url,
        "System.PullRequest.TargetBranch": f"refs/heads/{target}",
        "System.PullRequest.TargetBranchName": target,
        "System.PullRequest.isFork": "False",
    })


def _queued(trigger: Trigger, event: Event, doc: dict, where: str) -> None:
    """data / alarm: queued through the REST API (Manual, runReason=<event>), or by an incoming
    webhook resource when the pipeline declares one (ResourceTrigger, payload as a parameter)."""
    payload, source = event.payload("azure")
    trigger.payload = source
    webhooks = [w for w in ((doc.get("resources") or {}).get("webhooks") or []) if isinstance(w, dict)]
    if webhooks:
        alias = str(webhooks[0].get("webhook"))
        trigger.predefined["Build.Reason"] = "ResourceTrigger"
        trigger.parameters[alias] = payload
        trigger.declared_by = f"resources.webhooks[{alias}] of {where}"
        trigger.notes.append(f"the payload is ${{{{ parameters.{alias} }}}} in the pipeline")
        return
    declared = doc.get("parameters")
    names = set(declared) if isinstance(declared, dict) else {
        str(p.get("name")) for p in declared or [] if isinstance(p, dict)}
    if QUEUE_VARIABLE in names:  # a runtime parameter (templateParameters of the REST call)
        trigger.parameters[QUEUE_VARIABLE] = event.name
        kind = "parameter"
    else:  # a queue-time variable
        trigger.variables[QUEUE_VARIABLE] = event.name
        kind = "variable"
    trigger.declared_by = (f"a run of {where} queued through the REST API with the {kind} "
                           f"{QUEUE_VARIABLE}={event.name}")
    trigger.notes.append(f"the {event.name} payload is recorded only: a run queued through the REST API "
                         "receives parameters and variables, not the event")

