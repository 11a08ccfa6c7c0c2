"""AWS CodeBuild: the environment a build gets from what started it.

A webhook build (push, pull request) gets CodeBuild's `CODEBUILD_WEBHOOK_*` variables; a
build started by the project of infra/aws/ that handles pull requests also gets that
project's environment variables (they override the buildspec's). A schedule, new data or an
alarm starts the build through an EventBridge rule or an EventBridge Scheduler schedule of the
CloudFormation template under infra/aws/: what reaches the build is what the rule's target
passes (its `Input`, or its `InputTransformer` applied to the event): `environmentVariablesOverride`
of a CodeBuild target, or pipeline variables (a Step Functions `startPipelineExecution` task's
`Variables`; none for a pipeline target) that a CodePipeline action maps with `#{variables.X}`.
`RUN_REASON` (the run-reason variable of the CI files' contract) is set for every event.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from .errors import CIUsageError
from .events import PR_NUMBER, Event, Trigger, as_text, json_path, literal_branch
from .workspace import GitInfo

INFRA_DIR = "infra/aws"
REASON = "RUN_REASON"
PR_EVENTS = ("PULL_REQUEST_CREATED", "PULL_REQUEST_UPDATED", "PULL_REQUEST_REOPENED")
RULE_SOURCES = {"data": "aws.s3", "alarm": "aws.cloudwatch"}  # EventBridge source of each event


class _CfnLoader(yaml.SafeLoader):
    """CloudFormation YAML: `!Ref X` -> {"Ref": X}, `!Sub s` -> {"Fn::Sub": s}, ..."""


def _intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {"Ref" if suffix == "Ref" else f"Fn::{suffix}": value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_templates(folder: Path) -> list[tuple[str, dict]]:
    """(file, template) for every CloudFormation template in `folder`."""
    found = []
    for path in sorted(p for p in folder.rglob("*") if p.suffix in (".yaml", ".yml", ".json")):
        try:
            doc = yaml.load(path.read_text(), Loader=_CfnLoader)
        except yaml.YAMLError as exc:
            raise CIUsageError(f"{path}: not valid YAML: {exc}") from exc
        if isinstance(doc, dict) and isinstance(doc.get("Resources"), dict):
            found.append((str(path.relative_to(folder.parent.parent)), doc))
    return found


class Template:
    """One CloudFormation template, with the literal values it can give offline."""

    def __init__(self, name: str, doc: dict):
        self.name = name
        self.resources: dict[str, dict] = {k: v for k, v in doc["Resources"].items() if isinstance(v, dict)}
        self.parameters = {k: v.get("Default") for k, v in (doc.get("Parameters") or {}).items()
                           if isinstance(v, dict) and "Default" in v}

    def of_type(self, kind: str) -> list[tuple[str, dict]]:
        return [(k, r.get("Properties") or {}) for k, r in self.resources.items() if r.get("Type") == kind]

    def literal(self, value: Any) -> str | None:
        """The value with parameters at their defaults; None when it depends on a deployed resource."""
        if isinstance(value, (str, int, float, bool)):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if isinstance(value, dict) and set(value) == {"Ref"}:
            found = self.parameters.get(str(value["Ref"]))
            return None if found is None else str(found)
        if isinstance(value, dict) and set(value) == {"Fn::Sub"}:
            body, names = (value["Fn::Sub"], {}) if isinstance(value["Fn::Sub"], str) else value["Fn::Sub"]
            unknown = []

            def sub(m: re.Match) -> str:
                key = m.group(1)
                found = self.literal(names[key]) if key in names else (
                    None if key not in self.parameters else str(self.parameters[key]))
                if found is None:
                    unknown.append(key)
                    return m.group(0)
                return found
            text = re.sub(r"\$\{([A-Za-z0-9:._-]+)\}", sub, str(body))
            return None if unknown else text
        return None


def resolve(event: Event, workspace: Path, build_file: str, git: GitInfo) -> Trigger:
    """The environment CodeBuild would give the build for `event`.

    With a CloudFormation template under infra/aws/, exactly what it passes (so a rule that does
    not pass RUN_REASON shows in the rehearsal); without one, RUN_REASON=<event>.
    """
    folder = workspace / INFRA_DIR
    templates = [Template(n, d) for n, d in load_templates(folder)] if folder.is_dir() else []
    trigger = Trigger(event.name, f"{build_file} (no CloudFormation template under {INFRA_DIR}/)")
    if not templates and event.name != "pull_request":
        trigger.variables[REASON] = event.name
    if event.name in ("push", "pull_request"):
        branch = git.branch or "main"
        trigger.predefined = {"CODEBUILD_WEBHOOK_EVENT": "PUSH", "CODEBUILD_WEBHOOK_TRIGGER": f"branch/{branch}",
                              "CODEBUILD_WEBHOOK_HEAD_REF": f"refs/heads/{branch}"}
        if event.name == "pull_request":
            _pull_request(trigger, templates, git, branch)
        elif templates:  # CodePipeline starts the build with its variables' defaults
            trigger.declared_by = f"a push: the CodePipeline of {templates[0].name}"
            trigger.variables.update(_pipeline_environment(templates[0], {}, build_file, trigger.notes))
        return trigger
    payload, source = event.payload("aws")
    trigger.payload = source
    if not templates:
        trigger.notes.append(f"no CloudFormation template under {INFRA_DIR}/ says what starts the build: "
                             f"{REASON}={event.name}" + ("; the payload is recorded only" if source else ""))
        return trigger
    found = _rules(templates, event.name)
    if not found:
        names = ", ".join(t.name for t in templates)
        raise CIUsageError(f"--event {event.name}: no EventBridge rule or schedule in {names} starts a build on "
                           f"{event.name} ({_wanted(event.name)})")
    template, rule_name, targets = found[0]
    trigger.declared_by = f"{rule_name} in {template.name}"
    if condition := template.resources[rule_name].get("Condition"):
        trigger.notes.append(f"{rule_name} exists only where the stack's condition {condition} holds "
                             "(its parameters decide)")
    trigger.variables.update(_passed(template, targets, payload, build_file, trigger.notes))
    if not trigger.variables:
        trigger.notes.append(f"{rule_name} passes nothing to the build: {REASON} is what the buildspec says")
    if source and _passed(template, targets, {}, build_file, []) == trigger.variables:
        trigger.notes.append(f"{rule_name} passes nothing from the event itself: the payload is recorded only")
    return trigger


def _wanted(event: str) -> str:
    if event == "schedule":
        return "an AWS::Events::Rule with ScheduleExpression, or an AWS::Scheduler::Schedule"
    return f"an AWS::Events::Rule whose EventPattern has source {RULE_SOURCES[event]}"


def _pull_request(trigger: Trigger, templates: list[Template], git: GitInfo, branch: str) -> None:
    base = git.default_branch
    trigger.predefined.update({"CODEBUILD_WEBHOOK_EVENT": "PULL_REQUEST_CREATED",
                               "CODEBUILD_WEBHOOK_TRIGGER": f"pr/{PR_NUMBER}",
                               "CODEBUILD_SOURCE_VERSION": f"pr/{PR_NUMBER}"})
    for template in templates:
        for name, props in template.of_type("AWS::CodeBuild::Project"):
            groups = ((props.get("Triggers") or {}).get("FilterGroups")) or []
            filters = [f for group in groups if isinstance(group, list) for f in group if isinstance(f, dict)]
            events = " ".join(str(template.literal(f.get("Pattern")) or "") for f in filters if f.get("Type") == "EVENT")
            if not any(e in events for e in PR_EVENTS):
                continue
            for f in filters:
                if f.get("Type") == "BASE_REF":
                    base = literal_branch(template.literal(f.get("Pattern"))) or base
            trigger.declared_by = f"{name} (pull-request webhook) in {template.name}"
            for var in ((props.get("Environment") or {}).get("EnvironmentVariables")) or []:
                value = template.literal(var.get("Value"))
                if str(var.get("Type") or "PLAINTEXT") != "PLAINTEXT" or value is None:
                    trigger.notes.append(f"{name}: {var.get('Name')} is not a literal value: not set locally")
                    continue
                trigger.variables[str(var.get("Name"))] = value
            break
    trigger.predefined["CODEBUILD_WEBHOOK_BASE_REF"] = f"refs/heads/{base}"


def _rules(templates: list[Template], event: str) -> list[tuple[Template, str, list[dict]]]:
    """(template, resource name, targets) of the rules and schedules that start a build on `event`."""
    found = []
    for template in templates:
        for name, props in template.of_type("AWS::Events::Rule"):
            if str(props.get("State", "ENABLED")) == "DISABLED":
                continue
            pattern = props.get("EventPattern")
            if isinstance(pattern, str):
                try:
                    pattern = json.loads(pattern)
                except ValueError:
                    pattern = {}
            sources = (pattern or {}).get("source") or [] if isinstance(pattern, dict) else []
            kind = "schedule" if props.get("ScheduleExpression") else next(
                (e for e, s in RULE_SOURCES.items() if s in sources), None)
            if kind == event:
                found.append((template, name, [t for t in props.get("Targets") or [] if isinstance(t, dict)]))
        if event == "schedule":
            for name, props in template.of_type("AWS::Scheduler::Schedule"):
                if str(props.get("State", "ENABLED")) != "DISABLED":
                    found.append((template, name, [props.get("Target") or {}]))
    return found


def _input(template: Template, target: dict, payload: Any) -> Any:
    """What the target receives: its constant Input, the transformed event, or the event."""
    if "Input" in target:
        text = template.literal(target["Input"])
        return json.loads(text) if text else None
    transformer = target.get("InputTransformer")
    if isinstance(transformer, dict):
        paths = transformer.get("InputPathsMap") or {}
        text = template.literal(transformer.get("InputTemplate")) or ""
        text = _fill(text, {key: json_path(payload, str(path)) for key, path in paths.items()})
        try:
            return json.loads(text)
        except ValueError:
            return text
    if target.get("InputPath"):
        return json_path(payload, str(target["InputPath"]))
    return payload


def _fill(template: str, values: dict[str, Any]) -> str:
    """EventBridge's InputTemplate: `<name>` inside a JSON string becomes the value's text, outside
    a string the value as JSON."""
    out, in_string, i = [], False, 0
    while i < len(template):
        ch = template[i]
        if ch == "\\" and in_string:
            out.append(template[i:i + 2])
            i += 2
            continue
        if ch == '"':
            in_string = not in_string
        m = re.match(r"<([A-Za-z0-9_.-]+)>", template[i:]) if ch == "<" else None
        if m and m.group(1) in values:
            value = values[m.group(1)]
            out.append(json.dumps(as_text(value))[1:-1] if in_string else json.dumps(value))
            i += m.end()
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _passed(template: Template, targets: list[dict], payload: Any, build_file: str, notes: list[str]) -> dict:
    """The environment variables the rule's targets give the build."""
    out: dict[str, str] = {}
    for target in targets:
        received = _input(template, target, payload)
        arn = target.get("Arn")
        kind = template.resources.get(str(arn.get("Ref")), {}).get("Type") if isinstance(arn, dict) else None
        if kind == "AWS::CodePipeline::Pipeline":  # started as it is: its variables keep their defaults
            out.update(_pipeline_environment(template, {}, build_file, notes))
            continue
        if kind == "AWS::StepFunctions::StateMachine":
            received = _state_machine_call(template, str(arn["Ref"]), received)
        if not isinstance(received, dict):
            continue
        for var in received.get("environmentVariablesOverride") or []:  # a CodeBuild StartBuild target
            out[str(var.get("name"))] = as_text(var.get("value"))
        variables = received.get("variables") or received.get("Variables") or []  # StartPipelineExecution
        given = {str(v.get("name", v.get("Name"))): as_text(v.get("value", v.get("Value"))) for v in variables
                 if isinstance(v, dict)}
        if given:
            out.update(_pipeline_environment(template, given, build_file, notes))
    return out


def _state_machine_call(template: Template, name: str, received: Any) -> Any:
    """The request a state machine's `codepipeline:startPipelineExecution` task makes with the
    input it received (`Key.$` parameters are JSON paths into the input); None when it makes none."""
    props = template.resources[name].get("Properties") or {}
    definition = props.get("Definition")
    if definition is None and isinstance(props.get("DefinitionString"), str):
        try:
            definition = json.loads(props["DefinitionString"])
        except ValueError:
            definition = None
    for state in ((definition or {}).get("States") or {}).values():
        if isinstance(state, dict) and str(state.get("Resource", "")).endswith("codepipeline:startPipelineExecution"):
            return _parameters(state.get("Parameters") or {}, received)
    return None


def _parameters(node: Any, data: Any) -> Any:
    """Step Functions Parameters: `Key.$: $.path` takes the value at the path of `data`."""
    if isinstance(node, list):
        return [_parameters(v, data) for v in node]
    if not isinstance(node, dict):
        return node
    return {(k[:-2] if k.endswith(".$") else k): (json_path(data, str(v)) if k.endswith(".$") else _parameters(v, data))
            for k, v in node.items()}


def _pipeline_environment(template: Template, given: dict[str, str], build_file: str, notes: list[str]) -> dict:
    """The environment a CodePipeline CodeBuild action builds from pipeline variables (`#{variables.X}`)."""
    out: dict[str, str] = {}
    for _, props in template.of_type("AWS::CodePipeline::Pipeline"):
        values = {str(v.get("Name")): str(v.get("DefaultValue", "")) for v in props.get("Variables") or []
                  if isinstance(v, dict)}
        values.update(given)
        for stage in props.get("Stages") or []:
            for action in stage.get("Actions") or []:
                config = action.get("Configuration") or {}
                if (action.get("ActionTypeId") or {}).get("Provider") != "CodeBuild" or "EnvironmentVariables" not in config:
                    continue
                text = template.literal(config["EnvironmentVariables"])
                try:
                    env = json.loads(text) if text else []
                except ValueError:
                    env = []
                for var in env:
                    value = re.sub(r"#\{variables\.([A-Za-z0-9@_-]+)\}", lambda m, v=values: v.get(m.group(1), m.group(0)),
                                   str(var.get("value", "")))
                    out[str(var.get("name"))] = value
                if env:
                    return out  # the first build action: the one running the buildspec
    if given:
        notes.append("pipeline variables " + ", ".join(sorted(given)) + " reach no CodeBuild action's environment")
    return out
