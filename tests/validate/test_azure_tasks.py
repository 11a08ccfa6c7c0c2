"""Built-in task steps checked against the catalogue generated from microsoft/azure-pipelines-tasks."""

from __future__ import annotations

import json
from importlib.resources import files

import pytest

from mlops_gen.validate.azure_tasks import _Visibility, parse_rule

AZ = "azure-pipelines.yml"

HELM_DELETE = """\
steps:
  - task: HelmDeploy@0
    inputs:
      azureSubscription: my-subscription
      azureResourceGroup: my-rg
      kubernetesCluster: my-aks
      command: delete
      arguments: my-release
"""


def _task_rules(run) -> list[tuple[str, str]]:
    return [(f["rule"], f["message"]) for f in run.findings if f["rule"].startswith("az-")]


def test_catalogue_header_and_size():
    doc = json.loads(files("mlops_gen.validate").joinpath("data/azure-tasks.json").read_text(encoding="utf-8"))
    assert doc["source"] == "https://github.com/microsoft/azure-pipelines-tasks"
    assert len(doc["commit"]) == 40 and int(doc["commit"], 16) >= 0
    assert doc["date"] and doc["generated_by"] == "scripts/refresh_azure_tasks.py"
    assert len(doc["tasks"]) > 150
    assert doc["tasks"]["usenode@1"]["name"] == "UseNode"
    assert all(key == key.lower() and "@" in key for key in doc["tasks"])


@pytest.mark.parametrize("text", [
    "steps:\n  - task: UseNode@1\n    inputs:\n      version: 20.x\n",
    "steps:\n  - task: PublishCodeCoverageResults@2\n    inputs:\n      summaryFileLocation: coverage.xml\n",
    # case-insensitive names, inputs, aliases and pickList values; booleans in any spelling
    "steps:\n  - task: usenode@1\n    inputs:\n      VERSION: 20.x\n      checkLatest: TRUE\n",
    "steps:\n  - task: PowerShell@2\n    inputs:\n      targettype: INLINE\n      script: echo\n      pwsh: true\n",
    # a task only the vendored schema still knows is kept
    "steps:\n  - task: CmdLine@1\n    inputs:\n      filename: run.cmd\n",
    # expressions are never judged
    "steps:\n  - task: PowerShell@2\n    inputs:\n      targetType: ${{ parameters.kind }}\n"
    "      script: echo\n      pwsh: $(usePwsh)\n",
])
def test_built_in_tasks_accepted(check, text):
    run = check(AZ, text, "--strict")
    assert run.findings == [], run.output
    assert run.code == 0


def test_editable_picklist_takes_any_value(check):
    run = check(AZ, HELM_DELETE.replace("command: delete", "command: my-own-helm-verb"), "--strict")
    assert "az-task-input" not in run.rules(), run.output


def test_closed_picklist_value_is_checked(check):
    run = check(AZ, "steps:\n  - task: PowerShell@2\n    inputs:\n      targetType: shell\n      script: x\n")
    assert [r for r, m in _task_rules(run)] == ["az-task-input"]
    assert "filePath" in run.findings[0]["message"] and "inline" in run.findings[0]["message"]


def test_boolean_input_is_checked(check):
    run = check(AZ, "steps:\n  - task: CopyFiles@2\n    inputs:\n      TargetFolder: out\n      OverWrite: yes please\n")
    assert [r for r, m in _task_rules(run)] == ["az-task-input"]


def test_helm_delete_needs_no_save_inputs(check):
    run = check(AZ, HELM_DELETE, "--strict")
    assert run.findings == [], run.output


def test_helm_save_names_the_missing_input(check):
    run = check(AZ, "steps:\n  - task: HelmDeploy@0\n    inputs:\n      command: save\n")
    messages = [m for r, m in _task_rules(run) if r == "az-task-required-input"]
    assert any("'azureContainerRegistry'" in m for m in messages), run.output
    assert not any("'kubernetesCluster'" in m for m in messages)  # hidden when command is save
    assert run.code == 0  # a warning


def test_required_input_behind_dynamic_value_is_not_required(check):
    run = check(AZ, "steps:\n  - task: HelmDeploy@0\n    inputs:\n      command: $(helmCommand)\n", "--strict")
    assert "az-task-required-input" not in run.rules(), run.output


def test_near_miss_name_is_an_error(check):
    run = check(AZ, "steps:\n  - task: PublishBuildArtifact@1\n")
    assert [r for r, m in _task_rules(run)] == ["az-unknown-task"]
    assert "PublishBuildArtifacts@1" in run.findings[0]["message"]
    assert run.code == 1


def test_wrong_major_version_lists_the_versions(check):
    run = check(AZ, "steps:\n  - task: NodeTool@5\n")
    assert [r for r, m in _task_rules(run)] == ["az-unknown-task"]
    assert "NodeTool@0" in run.findings[0]["message"]
    assert run.code == 1


def test_case_difference_is_not_a_near_miss(check):
    run = check(AZ, "steps:\n  - task: COPYFILES@2\n    inputs: {targetFolder: out}\n", "--strict")
    assert run.findings == [], run.output


def test_custom_task_is_a_warning(check):
    run = check(AZ, "steps:\n  - task: MyCompanyTask@2\n")
    assert [(f["rule"], f["severity"]) for f in run.findings] == [("az-custom-task", "warning")]
    assert run.code == 0
    assert check(AZ, "steps:\n  - task: MyCompanyTask@2\n", "--strict").code == 1
    assert check(AZ, "steps:\n  - task: MyCompanyTask@2\n", "--allow-task", "mycompanytask@*").findings == []


def test_extension_task_is_still_a_warning(check):
    run = check(AZ, "steps:\n  - task: acme.tools.Deploy@1\n")
    assert [(f["rule"], f["severity"]) for f in run.findings] == [("az-extension-task", "warning")]
    assert run.code == 0


def test_task_without_version_is_an_error(check):
    run = check(AZ, "steps:\n  - task: CopyFiles\n")
    assert [r for r, m in _task_rules(run)] == ["az-unknown-task"]
    assert run.code == 1


@pytest.mark.parametrize(("rule", "values", "expected"), [
    ("command == save", {"command": "SAVE"}, True),
    ("command != save", {"command": "save"}, False),
    ("a = x && b = y", {"a": "x", "b": "z"}, False),
    ("a = x || b = y", {"a": "q", "b": "y"}, True),
    ('a != ""', {"a": ""}, False),
    ("action = Run an image", {"action": "run an image"}, True),
    ("package NotEndsWith .war", {"package": "app.WAR"}, False),
    ("package EndsWith .war", {"package": "app.war"}, True),
    ("a = 1 || (a = 2 && b != whatIf)", {"a": "2", "b": "whatif"}, False),
    ("a = 1 || (a = 2 && b != whatIf)", {"a": "2", "b": "validate"}, True),
    ("a = x && b = y", {"a": "$(kind)", "b": "y"}, None),  # dynamic: unknown
    ("a = x || b = y", {"a": "$(kind)", "b": "y"}, True),
    ("nosuch = x", {}, None),
    ("a = (x", {"a": "x"}, None),  # unreadable
])
def test_visible_rule(rule, values, expected):
    names = {n: {"name": n} for n in ("a", "b", "command", "action", "package")}
    assert parse_rule(rule) is not None or expected is None
    assert _Visibility(names, values).of({"name": "target", "visibleRule": rule}) is expected


def test_input_depending_on_a_hidden_input_is_hidden():
    names = {"command": {"name": "command"},
             "charttype": {"name": "chartType", "default": "Name", "visibleRule": "command == install"},
             "chartname": {"name": "chartName", "visibleRule": "chartType == Name"}}
    assert _Visibility(names, {"command": "delete"}).of(names["chartname"]) is False
    assert _Visibility(names, {"command": "install"}).of(names["chartname"]) is True


def test_templated_inputs_are_not_judged(check):
    text = """\
parameters:
  - name: extra
    type: object
    default: {}
steps:
  - task: HelmDeploy@0
    inputs:
      command: save
      ${{ insert }}: ${{ parameters.extra }}
  - task: CopyFiles@2
    inputs:
      ${{ if eq(parameters.extra, 'x') }}:
        TargetFolder: a
      ${{ else }}:
        TargetFolder: b
  - task: CopyFiles@2
    inputs: ${{ parameters.inputs }}
"""
    run = check(AZ, text, "--strict")
    assert not {r for r in run.rules() if r.startswith("az-task")}, run.output
