"""Cloud Build: the trigger an event fires, read from the repository's trigger files.

A Cloud Build run is always a trigger's run: the trigger (gcloud `builds triggers import`
format, under infra/gcp/triggers/) names the build file and the substitutions that override
the file's own. The event picks the trigger that declares it: a repository push (`github.push`,
`repositoryEventConfig.push`, ...), a pull request (`...pullRequest`), or a trigger whose
substitutions set `_RUN_REASON` to the event (a Pub/Sub trigger for new data or an alarm, a
trigger Cloud Scheduler runs). A Pub/Sub or webhook trigger binds the message into its
substitutions with `$(body.message.data.x)` / `$(body.message.attributes.x)`: the payload
(the Pub/Sub push body) is bound the same way; Cloud Build decodes `message.data` as JSON.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import CIUsageError
from .events import PR_NUMBER, Event, Trigger, as_text, json_path, literal_branch
from .workspace import GitInfo

TRIGGER_DIR = "infra/gcp/triggers"
REASON = "_RUN_REASON"  # the one run-reason substitution of the CI files' contract
REPO_EVENTS = ("github", "repositoryEventConfig", "bitbucketServerTriggerConfig", "gitlabEnterpriseEventsConfig")
_BINDING = re.compile(r"\$\((body(?:\.[A-Za-z0-9_\-]+|\[\d+\])*)\)")


def load_triggers(folder: Path) -> list[tuple[str, dict]]:
    """(file, trigger) for every trigger in `folder` (a file may hold several YAML documents)."""
    found = []
    for path in sorted(p for p in folder.glob("*") if p.suffix in (".yaml", ".yml", ".json")):
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError as exc:
            raise CIUsageError(f"{TRIGGER_DIR}/{path.name}: not valid YAML: {exc}") from exc
        found += [(f"{TRIGGER_DIR}/{path.name}", d) for d in docs if isinstance(d, dict)]
    return found


def repo_event(trigger: dict) -> tuple[str, dict] | None:
    """('push' | 'pull_request', its filter) for a trigger on repository events."""
    for key in REPO_EVENTS:
        config = trigger.get(key)
        if isinstance(config, dict):
            if isinstance(config.get("push"), dict):
                return "push", config["push"]
            if isinstance(config.get("pullRequest"), dict):
                return "pull_request", config["pullRequest"]
    if isinstance(trigger.get("triggerTemplate"), dict):  # Cloud Source Repositories: pushes
        return "push", trigger["triggerTemplate"]
    return None


def declares(trigger: dict, event: str) -> bool:
    """A literal `_RUN_REASON` names the trigger's event; else its repository event does."""
    reason = (trigger.get("substitutions") or {}).get(REASON)
    if isinstance(reason, str) and "$(" not in reason:
        return reason == event
    found = repo_event(trigger)
    return found is not None and found[0] == event


def config_path(trigger: dict) -> str:
    """The build file a trigger runs: `filename`, or `gitFileSource.path` (manual, Pub/Sub, webhook)."""
    source = trigger.get("gitFileSource")
    return str(trigger.get("filename") or (source.get("path") if isinstance(source, dict) else "") or "")


def _pushed_ref_matches(filter_: dict, git: GitInfo) -> bool:
    if "tag" in filter_:
        return bool(git.tag) and re.search(str(filter_["tag"]), git.tag) is not None
    if "branch" in filter_:
        return bool(git.branch) and re.search(str(filter_["branch"]), git.branch) is not None
    return True


def choose(triggers: list[tuple[str, dict]], event: Event, git: GitInfo, build_file: str | None,
           preferred: str) -> tuple[str, dict] | None:
    """The trigger `event` fires: of those that declare it (and run `build_file`, when one was
    asked for), the one whose branch/tag filter matches the checkout, else one running `preferred`."""
    candidates = [(f, t) for f, t in triggers if declares(t, event.name)
                  and (build_file is None or config_path(t) == build_file)
                  and not t.get("disabled")]
    if event.name == "push":  # a branch push and a tag push are different pushes
        on_ref = [(f, t) for f, t in candidates if _pushed_ref_matches(repo_event(t)[1], git)]
        branch_pushes = [(f, t) for f, t in candidates if "tag" not in repo_event(t)[1]]
        candidates = on_ref or branch_pushes or candidates
    ranked = sorted(candidates, key=lambda ft: config_path(ft[1]) != preferred)
    return ranked[0] if ranked else None


def message_body(payload: Any) -> Any:
    """The body a Pub/Sub push delivers, with `message.data` decoded (base64 JSON) as Cloud Build
    reads it for `$(body.message.data.x)` bindings."""
    if not isinstance(payload, dict) or not isinstance(payload.get("message"), dict):
        return payload
    message = dict(payload["message"])
    data = message.get("data")
    if isinstance(data, str):
        try:
            decoded = base64.b64decode(data, validate=True).decode()
            message["data"] = json.loads(decoded) if decoded.strip()[:1] in ("{", "[") else decoded
        except (binascii.Error, UnicodeDecodeError, ValueError):
            pass  # not base64 JSON: bound as written
    return {**payload, "message": message}


def bind(substitutions: dict[str, str], body: Any, notes: list[str]) -> dict[str, str]:
    """Replace every `$(body...)` in the trigger's substitution values with the payload's value."""
    def value(m: re.Match) -> str:
        found = json_path(body, m.group(1).removeprefix("body"))
        if found is None:
            notes.append(f"$({m.group(1)}) is not in the payload: bound to ''")
        return as_text(found)
    return {k: _BINDING.sub(value, v) for k, v in substitutions.items()}


def resolve(event: Event, workspace: Path, build_file: str | None, preferred: str, git: GitInfo) -> Trigger:
    """The trigger `event` fires and the substitutions it gives the build.

    Without trigger files a push runs the build file as it is (as before); every other event
    needs a trigger that declares it: else a CIUsageError naming the event and the folder.
    """
    folder = workspace / TRIGGER_DIR
    triggers = load_triggers(folder) if folder.is_dir() else []
    # the default push keeps the file a run without --event ran; an event asked for picks its trigger's
    chosen = choose(triggers, event, git, build_file or (None if event.explicit else preferred), preferred)
    if chosen is None:
        if event.name == "push" and not event.explicit:
            return Trigger("push", f"{build_file or preferred} (no push trigger in {TRIGGER_DIR}/)",
                           build_file=build_file or preferred)
        wanted = f" running {build_file}" if build_file else ""
        how = (f"github.{'push' if event.name == 'push' else 'pullRequest'} or another repository event"
               if event.name in ("push", "pull_request") else f"substitutions.{REASON}: {event.name}")
        raise CIUsageError(f"--event {event.name}: no trigger{wanted} in {TRIGGER_DIR}/ declares it "
                           f"(looked in {folder} for {how})")
    where, spec = chosen
    trigger = Trigger(event.name, f"{where} ({spec.get('name', 'unnamed')})",
                      build_file=config_path(spec) or build_file or preferred)
    substitutions = {str(k): "" if v is None else str(v) for k, v in (spec.get("substitutions") or {}).items()}
    payload, source = event.payload("gcp")  # data and alarm: the Pub/Sub push body
    if source is not None:
        trigger.payload = source
        bound = bind(substitutions, message_body(payload), trigger.notes)
        if bound == substitutions:
            trigger.notes.append(f"{where} binds nothing of the message ($(body...)): the payload is recorded only")
        substitutions = bound
    if event.name == "pull_request":
        base = literal_branch((repo_event(spec) or ("", {}))[1].get("branch")) or git.default_branch
        trigger.predefined.update({"_PR_NUMBER": PR_NUMBER, "_HEAD_BRANCH": git.branch or "feature",
                                   "_BASE_BRANCH": base, "_HEAD_REPO_URL": git.remote_url})
    if spec.get("filter"):
        trigger.notes.append(f"filter {spec['filter']!r}: not evaluated locally")
    trigger.variables = substitutions
    return trigger
