"""What started the build: `--event push|pull_request|schedule|data|alarm` and its payload.

Each service learns why it runs from its own variables (CodeBuild's webhook variables and the
environment a rule passes, Azure's `Build.Reason` and queue-time variables, the substitutions
of the Cloud Build trigger that fired). The dialect modules (codebuild_triggers,
azure_triggers, cloudbuild_triggers) turn an `Event` into a `Trigger`: the variables that
service would set, read from what the repository itself declares (its CI file and infra/).
The payload of a data or alarm event is the JSON the cloud delivers (an EventBridge event,
a Pub/Sub push body, an Event Grid / Azure Monitor alert); a bundled fixture stands in by
default.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import CIUsageError

EVENTS = ("push", "pull_request", "schedule", "data", "alarm")
WITH_PAYLOAD = ("data", "alarm")
FIXTURES = Path(__file__).with_name("payloads")  # bundled payloads, one per cloud and event
PR_NUMBER = "1"  # the pull request a local run pretends to build


@dataclass
class Event:
    name: str = "push"
    explicit: bool = False  # given with --event (strict: the file must declare it) or the default push
    payload_file: Path | None = None  # --payload; None: the bundled fixture of the provider

    def payload(self, provider: str) -> tuple[Any, str] | tuple[None, None]:
        """(payload, where it came from) for a data or alarm event; (None, None) otherwise."""
        if self.name not in WITH_PAYLOAD:
            return None, None
        path = self.payload_file or FIXTURES / f"{provider}-{self.name}.json"
        return read_payload(path), str(path)


def make_event(name: str | None, payload: Path | None) -> Event:
    """The event of a run; a payload for an event that carries none is a usage error naming --payload."""
    if payload is not None:
        if (name or "push") not in WITH_PAYLOAD:
            raise CIUsageError(f"--payload: only --event {' or '.join(WITH_PAYLOAD)} carries a payload "
                               f"(the event is {name or 'push'})")
        read_payload(payload)  # fail before anything runs
    return Event(name or "push", name is not None, payload)


def read_payload(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise CIUsageError(f"--payload {path}: cannot be read: {exc.strerror or exc}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CIUsageError(f"--payload {path}: not valid JSON: {exc}") from exc


@dataclass
class Trigger:
    """What the service would set for this event, and what in the repository declares it."""

    event: str
    declared_by: str  # e.g. "pr: of azure-pipelines.yml", "infra/gcp/triggers/data.yaml"
    predefined: dict[str, str] = field(default_factory=dict)  # the service's own variables
    variables: dict[str, str] = field(default_factory=dict)  # env overrides / queue-time vars / substitutions
    parameters: dict[str, Any] = field(default_factory=dict)  # Azure: a webhook resource's payload
    payload: str | None = None  # the payload file used
    build_file: str | None = None  # Cloud Build: the file the chosen trigger runs
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"name": self.event, "declared_by": self.declared_by, "predefined": self.predefined,
               "variables": self.variables, "payload": self.payload}
        if self.build_file:
            out["build_file"] = self.build_file
        if self.notes:
            out["notes"] = self.notes
        return out


def literal_branch(pattern: Any) -> str | None:
    """`main` from `main`, `refs/heads/main`, `^main$`, `^refs/heads/main$`; None for a real pattern."""
    if not isinstance(pattern, str):
        return None
    text = pattern.strip().removeprefix("^").removesuffix("$").removeprefix("refs/heads/")
    return text if re.fullmatch(r"[A-Za-z0-9._/-]+", text) and not text.endswith("/") else None


def json_path(data: Any, path: str) -> Any:
    """The value at `$.a.b[0].c` (the subset EventBridge input paths and Cloud Build bindings use);
    None when a step is missing."""
    node = data
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path.strip().removeprefix("$").lstrip(".")):
        if part.startswith("["):
            index = int(part[1:-1])
            node = node[index] if isinstance(node, list) and index < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def as_text(value: Any) -> str:
    """A payload value as a variable's text: strings as they are, the rest as compact JSON."""
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
