"""Azure: the rendered azure-pipelines.yml (vendored Microsoft schema, id rules, thin-sequencer rules),
infra/azure/setup.sh against a fake az CLI, and the generated repo's own offline Azure tests
(SDK v2, and the legacy v1 option) in cached venvs."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import project_python, render, run_generated_tests

BIN = Path(sys.executable).parent
ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
TASKS = {"UsePythonVersion@0", "Cache@2", "PublishTestResults@2", "AzureCLI@2",
         "PublishPipelineArtifact@1", "DownloadPipelineArtifact@2"}
STAGES = ["Test", "Train", "Register", "DeployStaging", "DeployProd", "Batch"]
SETUP, RUN = "infra/azure/pipelines/setup.yml", "infra/azure/pipelines/run.yml"
STAGING, PROD = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"
MULTI = {"serving": "image", "isolation": "multi", "azure_staging_subscription_id": STAGING,
         "azure_prod_subscription_id": PROD}


@pytest.fixture(scope="module")
def v2(tmp_path_factory, rendered) -> Path:
    return Path(shutil.copytree(rendered(clouds=["azure"]), tmp_path_factory.mktemp("az") / "repo"))


@pytest.fixture(scope="module")
def multi(tmp_path_factory, rendered) -> Path:
    """serving: image and isolation: multi (the other pole of both new questions)."""
    return Path(shutil.copytree(rendered(clouds=["azure"], **MULTI), tmp_path_factory.mktemp("azm") / "repo"))


@pytest.fixture(scope="module")
def v1(tmp_path_factory) -> Path:
    return render(tmp_path_factory.mktemp("az1") / "repo", clouds=["azure"], azure_ml_sdk="v1")


def _pipeline(repo: Path) -> dict:
    return yaml.safe_load((repo / "azure-pipelines.yml").read_text())


def _jobs(pipeline: dict):
    for stage in pipeline["stages"]:
        for job in stage["jobs"]:
            yield stage, job


def _steps(job: dict) -> list[dict]:
    return job.get("steps") or job["strategy"]["runOnce"]["deploy"]["steps"]


def _check_schema(path: Path) -> None:
    run = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.azure-pipelines", "--regex-variant", "python",
         "--data-transform", "azure-pipelines", str(path)],
        check=False, capture_output=True, text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("flavour", ["v2", "v1", "multi"])
def test_pipeline_passes_the_vendored_schema_and_validate(flavour: str, request) -> None:
    repo = request.getfixturevalue(flavour)
    _check_schema(repo / "azure-pipelines.yml")
    run = subprocess.run([str(BIN / "mlops-gen"), "validate", "--strict", str(repo / "azure-pipelines.yml")],
                         check=False, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("flavour", ["v2", "multi"])
def test_pipeline_shape_ids_and_thin_steps(flavour: str, request) -> None:
    v2 = request.getfixturevalue(flavour)
    pipeline = _pipeline(v2)
    assert pipeline["trigger"]["branches"]["include"] == ["main"]
    assert pipeline["pr"]["branches"]["include"] == ["main"]
    # the one switch: azure on the default branch, local on pull requests
    assert pipeline["variables"]["deployTarget"] == (
        "$[ iif(eq(variables['Build.Reason'], 'PullRequest'), 'local', 'azure') ]")
    assert [s["stage"] for s in pipeline["stages"]] == STAGES
    text = (v2 / "azure-pipelines.yml").read_text()
    assert "continueOnError" not in text and "|| true" not in text
    for stage, job in _jobs(pipeline):
        assert ID.match(stage["stage"]) and ID.match(job.get("job") or job["deployment"])
        for step in _steps(job):
            if "task" in step:
                assert step["task"] in TASKS, step["task"]
            if step.get("task") == "AzureCLI@2":
                inputs = step["inputs"]
                assert inputs["scriptType"] == "bash" and inputs["scriptLocation"] == "inlineScript"
                assert inputs["azureSubscription"] == "${{ variables.serviceConnection }}"
            script = step.get("script") or step.get("bash") or step.get("inputs", {}).get("inlineScript")
            if script:
                assert script.startswith("set -euo pipefail\n"), script
                for line in script.splitlines():
                    if line.startswith("python -m my_ml_project "):
                        assert '--target "$(deployTarget)"' in line, line
                    if "pip install -e" in line:
                        assert "$(deployTarget)" in line
    deployments = {job["deployment"]: job for _, job in _jobs(pipeline) if "deployment" in job}
    assert deployments["DeployStaging"]["environment"] == "my-ml-project-staging"
    assert deployments["DeployProd"]["environment"] == "my-ml-project-prod"
    for _, job in _jobs(pipeline):  # every job sets up through the one steps template
        assert _steps(job)[_steps(job)[0] == {"download": "none"}]["template"] == SETUP
    prod = next(s for s in pipeline["stages"] if s["stage"] == "DeployProd")
    assert prod["condition"] == "and(succeeded(), eq(variables.isMain, true))"
    assert "refs/heads/main" in pipeline["variables"]["isMain"]
    published = [s["inputs"]["artifact"] for _, j in _jobs(pipeline) for s in _steps(j)
                 if s.get("task") == "PublishPipelineArtifact@1"]
    downloaded = [s["inputs"]["artifactName"] for _, j in _jobs(pipeline) for s in _steps(j)
                  if s.get("task") == "DownloadPipelineArtifact@2"]
    assert published == ["trained", "registered", "released", "batch"] and set(downloaded) <= set(published)


def _runs(pipeline: dict, stage: str) -> list[dict]:
    """The parameters of every run.yml step (a stage command on the deploy target) of `stage`."""
    return [step["parameters"] for st, job in _jobs(pipeline) if st["stage"] == stage
            for step in _steps(job) if step.get("template") == RUN]


def test_step_templates_sign_in_only_on_azure_and_hold_the_shared_setup(v2: Path) -> None:
    setup = yaml.safe_load((v2 / SETUP).read_text())
    assert {"checkout": "self"} in setup["steps"]
    assert 'pip install -e ".[${{ parameters.extras }}]"' in setup["steps"][-1]["script"]
    run = yaml.safe_load((v2 / RUN).read_text())["steps"]
    assert [s.get("task", "script") for s in run] == ["AzureCLI@2", "script"]
    cli, local = run
    assert cli["inputs"]["azureSubscription"] == "${{ variables.serviceConnection }}"
    assert cli["condition"] == "and(${{ parameters.condition }}, eq(variables.deployTarget, 'azure'))"
    assert local["condition"] == "and(${{ parameters.condition }}, ne(variables.deployTarget, 'azure'))"
    assert cli["inputs"]["inlineScript"] == local["script"] == "set -euo pipefail\n${{ parameters.script }}\n"
    text = (v2 / "azure-pipelines.yml").read_text()
    assert "AzureCLI@2" not in text and text.count(f"template: {RUN}") == 8


def test_one_meaning_of_pull_request_main_and_release(v2: Path) -> None:
    pipeline = _pipeline(v2)
    stages = {s["stage"]: s for s in pipeline["stages"]}
    # pull request: Test, Train and the gate only; register and both deploy stages are skipped
    register = next(r for r in _runs(pipeline, "Register") if "register" in r["script"])
    assert register["condition"] == "and(succeeded(), eq(variables.isPullRequest, false))"
    assert stages["DeployStaging"]["condition"] == "and(succeeded(), eq(variables.isPullRequest, false))"
    # staging's smoke test writes the release record, published for prod
    staging = _runs(pipeline, "DeployStaging")[0]["script"].splitlines()
    assert [line.split()[3] for line in staging] == ["deploy", "smoke"]
    # prod: exactly the recorded version, then its smoke test, and a roll-back when that fails
    prod, rollback = _runs(pipeline, "DeployProd")
    lines = prod["script"].splitlines()
    assert [line.split()[3] for line in lines] == ["promote", "deploy", "smoke"]
    assert all("--release artifacts/smoked-staging.json" in line for line in lines[:2])
    assert rollback["condition"] == "failed()" and "rollback" in rollback["script"]
    assert "artifacts/deployed-prod.json" in rollback["script"]


def test_hostile_answers_still_give_a_valid_pipeline(tmp_path: Path) -> None:
    repo = render(tmp_path / "repo", clouds=["azure"], project_name="2024 O'Brien: \"ML\" #1 & co",
                  default_branch="release/v1.2", python_version="3.12")
    pipeline = _pipeline(repo)
    assert pipeline["trigger"]["branches"]["include"] == ["release/v1.2"]
    assert pipeline["variables"]["pythonVersion"] == "3.12"
    _check_schema(repo / "azure-pipelines.yml")
    mlops = yaml.safe_load((repo / "mlops.yaml").read_text())
    for settings in mlops["azure"]["deployments"].values():
        assert re.match(r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$", settings["endpoint"])
    subprocess.run(["bash", "-n", str(repo / "infra" / "azure" / "setup.sh")], check=True)


FAKE_AZ = r"""#!/usr/bin/env bash
# A stand-in for the az CLI: logs every call, answers the queries setup.sh makes.
echo "az $*" >> "$AZ_LOG"
case "$*" in
  "account show --query id -o tsv") echo 00000000-0000-0000-0000-000000000001 ;;
  "account show --query name -o tsv") echo my-subscription ;;
  "account show --query tenantId -o tsv") echo 00000000-0000-0000-0000-000000000002 ;;
  "ml workspace show"*"--query id"*) echo /subscriptions/x/resourceGroups/rg/workspaces/ws ;;
  "ml workspace show"*|"ml compute show"*) exit 1 ;;
  "identity show"*clientId*) echo client-id ;;
  "identity show"*principalId*) echo principal-id ;;
  "devops service-endpoint list"*) echo "" ;;
  "devops service-endpoint create"*) grep -q WorkloadIdentityFederation "${@: -5:1}" && echo conn-id ;;
  "devops service-endpoint show"*Issuer*) echo https://vstoken.dev.azure.com/org ;;
  "devops service-endpoint show"*Subject*) echo sc://org/project/conn ;;
  "devops invoke"*"--http-method GET"*)
    name="$(printf '%s' "$*" | grep -o "name=='[^']*'" | cut -d"'" -f2)"
    if [ -f "$AZ_LOG.env.$name" ]; then echo "env-$name"; fi ;;
  "devops invoke"*environments*"--http-method POST"*)
    touch "$AZ_LOG.env.$(grep -o '"name": "[^"]*"' "${@: -3:1}" | cut -d'"' -f4)" ;;
  "pipelines list"*) if [ -f "$AZ_LOG.pipeline" ]; then echo 42; fi ;;
  "pipelines create"*) touch "$AZ_LOG.pipeline" ;;
  "devops user show"*) echo user-id ;;
  "devops project show"*) echo project-id ;;
  "logic workflow create"*)
    while [ "$#" -gt 0 ]; do if [ "$1" = --definition ]; then cat "$2" > "$AZ_LOG.workflow.json"; fi; shift; done ;;
  "logic workflow show"*principalId*) echo workflow-principal ;;
  "rest --method post"*listCallbackUrl*) echo "https://logic.example/workflows/w/triggers/eventGrid/run?sig=abc" ;;
  "monitor action-group show"*) echo /subscriptions/x/resourceGroups/rg/providers/microsoft.insights/actionGroups/ag ;;
  "ml online-endpoint show --name my-ml-project-prod"*) echo /subscriptions/x/onlineEndpoints/my-ml-project-prod ;;
  "ml online-endpoint show"*) exit 1 ;;
  "storage account show"*location*) echo westeurope ;;
  "storage account show"*) echo /subscriptions/x/storageAccounts/data ;;
esac
exit 0
"""


def test_setup_script_against_a_fake_az(v2: Path, tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "az"
    fake.parent.mkdir()
    fake.write_text(FAKE_AZ)
    fake.chmod(0o755)
    log = tmp_path / "az.log"
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "AZ_LOG": str(log),
           "ORG": "https://dev.azure.com/contoso", "PROJECT": "ml", "REPO": "my-ml-project", "APPROVER": "a@b.c",
           "ALERT_EMAIL": "ops@example.com", "DATA_ACCOUNT": "data", "DATA_CONTAINER": "landing"}
    run = subprocess.run(["bash", str(v2 / "infra" / "azure" / "setup.sh")], check=False, env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    calls = log.read_text().splitlines()
    assert any(c.startswith("az ml workspace create --name mlw-my-ml-project") for c in calls)
    assert any(c.startswith("az ml compute create --name cpu-cluster") for c in calls)
    assert any("role assignment create" in c and "AzureML Data Scientist" in c for c in calls)
    assert any(c.startswith("az devops service-endpoint create") for c in calls)
    assert any("federated-credential create" in c and "sc://org/project/conn" in c for c in calls)
    assert sum("--http-method POST" in c and "environments" in c for c in calls) == 2
    assert any(c.startswith("az pipelines create --name my-ml-project") for c in calls)
    assert sum("PipelinesChecks" in c for c in calls) == 3  # the approval, and an exclusive lock per environment
    # alarms: an action group e-mailing alerts.email; metric alerts on the endpoints that exist
    assert any(c.startswith("az monitor action-group create") and "--action email owner ops@example.com" in c
               for c in calls)
    alerts = [c for c in calls if c.startswith("az monitor metrics alert create")]
    assert len(alerts) == 2 and all("onlineEndpoints/my-ml-project-prod" in c for c in alerts)
    assert any("statusCodeClass includes 5xx" in c for c in alerts) and any("RequestLatency_P99" in c for c in alerts)
    assert "my-ml-project-staging is not deployed yet" in run.stdout
    # retraining: the Logic App, fed by the prod monitor's breaches and by blobs created in the data container
    assert any(c.startswith("az logic workflow create") and "--mi-system-assigned" in c for c in calls)
    workflow = json.loads(Path(f"{log}.workflow.json").read_text())
    assert workflow["definition"] == json.loads((v2 / "infra" / "azure" / "retrain-trigger.json").read_text())
    assert {k: v["value"] for k, v in workflow["parameters"].items()} == {
        "organization": "https://dev.azure.com/contoso", "project": "ml", "pipelineId": 42}
    (drift,) = [c for c in calls if "event-subscription create" in c and "-drift" in c]
    assert "--included-event-types Microsoft.MachineLearningServices.RunStatusChanged" in drift
    assert "data.RunTags.azureml_modelmonitor_threshold_breached StringContains my_ml_project_prod_monitor_" in drift
    (data,) = [c for c in calls if "event-subscription create" in c and "-data" in c]
    assert "Microsoft.Storage.BlobCreated" in data and "/containers/landing/blobs/" in data
    assert "sig=" not in (v2 / "infra" / "azure" / "setup.sh").read_text()


# A stand-in for the az CLI that records every call (argv, and the files it was handed) as JSON lines and
# answers with ids shaped like Azure's, built from the call's own --subscription, --name and group.
RECORDING_AZ = r"""#!/usr/bin/env python3
import json, os, sys
args = sys.argv[1:]
def opt(name, default=""):
    return args[args.index(name) + 1] if name in args else default
files = {}
for flag in ("--role-definition", "--service-endpoint-configuration", "--file"):
    if flag in args and os.path.exists(opt(flag)):
        files[flag] = open(opt(flag)).read()
with open(os.environ["AZ_LOG"], "a") as log:
    log.write(json.dumps({"args": args, "files": files}) + "\n")
command = args[:next((i for i, a in enumerate(args) if a.startswith("-")), len(args))]
words, query = " ".join(command), opt("--query")
sub, name, rg = opt("--subscription", "00000000-0000-0000-0000-0000000000aa"), opt("--name"), opt("--resource-group", os.environ["AZ_GROUP"])
ml = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.MachineLearningServices"
answers = [
    ("account show", "id", "00000000-0000-0000-0000-0000000000aa"), ("account show", "name", "sub-name"),
    ("account show", "tenantId", "tenant"),
    ("ml workspace show", "id", f"{ml}/workspaces/{name}"), ("ml workspace show", "container_registry", ""),
    ("ml registry show", "id", f"{ml}/registries/{name}"),
    ("acr show", "id", f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/{name}"),
    ("identity show", "clientId", f"client-{name}"), ("identity show", "principalId", f"principal-{name}"),
    ("ml online-endpoint show", "identity.principal_id", f"endpoint-principal-{name}"),
    ("devops service-endpoint list", "", ""),
    ("devops service-endpoint create", "id", "conn-" + json.loads(files.get("--service-endpoint-configuration", "{}")).get("name", "")),
    ("devops service-endpoint show", "Issuer", "https://vstoken.dev.azure.com/org"),
    ("devops service-endpoint show", "Subject", f"sc://org/project/{opt('--id')}"),
    ("pipelines list", "", "42"), ("role definition list", "", ""), ("devops invoke", "value", "env-id"),
    ("logic workflow show", "", "workflow-principal"), ("rest", "", "https://logic.example/run"),
    ("security pricing show", "", "Free"),
]
if query == "" and command[-1] == "show":
    sys.exit(1)  # an existence check: nothing exists yet
for command, asked, answer in answers:
    if words.startswith(command) and asked in query:
        print(answer)
        break
"""


def _setup_calls(repo: Path, tmp_path: Path) -> list[dict]:
    fake = tmp_path / "bin" / "az"
    fake.parent.mkdir()
    fake.write_text(RECORDING_AZ)
    fake.chmod(0o755)
    log = tmp_path / "az.jsonl"
    env = {**os.environ, "PATH": f"{fake.parent}{os.pathsep}{os.environ['PATH']}", "AZ_LOG": str(log),
           "ORG": "https://dev.azure.com/contoso", "PROJECT": "ml", "REPO": "my-ml-project",
           "AZ_GROUP": yaml.safe_load((repo / "mlops.yaml").read_text())["azure"]["resource_group"]}
    run = subprocess.run(["bash", str(repo / "infra" / "azure" / "setup.sh")], check=False, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return [json.loads(line) for line in log.read_text().splitlines()]


def _assignments(calls: list[dict]) -> set[tuple[str, str, str]]:
    """(assignee, role, scope) of every role assignment the script makes."""
    def opt(args, name):
        return args[args.index(name) + 1]
    return {(opt(c["args"], "--assignee-object-id"), opt(c["args"], "--role"), opt(c["args"], "--scope"))
            for c in calls if c["args"][:3] == ["role", "assignment", "create"]}


def test_setup_multi_gives_each_environment_its_workspace_identity_and_least_privilege(tmp_path: Path, rendered) -> None:
    repo = rendered(clouds=["azure"], **MULTI)
    calls = _setup_calls(repo, tmp_path)
    mlops = yaml.safe_load((repo / "mlops.yaml").read_text())
    tooling, rg = "00000000-0000-0000-0000-0000000000aa", mlops["azure"]["resource_group"]
    ml = "/subscriptions/{}/resourceGroups/" + rg + "/providers/Microsoft.MachineLearningServices/{}"
    registry = ml.format(tooling, f"registries/{mlops['azure']['workspace'][:29]}-reg")
    acr = f"/subscriptions/{tooling}/resourceGroups/{rg}/providers/Microsoft.ContainerRegistry/registries/"
    (acr_create,) = [c["args"] for c in calls if c["args"][:2] == ["acr", "create"]]
    acr += acr_create[acr_create.index("--name") + 1]
    role = "my-ml-project release reader"
    expected = {("principal-id-my-ml-project", "AzureML Data Scientist", ml.format(tooling, "workspaces/mlw-my-ml-project")),
                ("principal-id-my-ml-project", "Container Registry Tasks Contributor", acr),
                ("principal-id-my-ml-project", "AcrPull", acr),
                ("principal-id-my-ml-project", "AzureML Registry User", registry)}
    for env, sub in (("staging", STAGING), ("prod", PROD)):
        where = mlops["environments"][env]
        assert where["azure_subscription_id"] == sub
        workspace = ml.format(sub, f"workspaces/{where['azure_workspace']}")
        endpoint = mlops["azure"]["deployments"][env]["endpoint"]
        expected |= {(f"principal-id-my-ml-project-{env}", "AzureML Data Scientist", workspace),
                     (f"principal-id-my-ml-project-{env}", role, registry),
                     (f"principal-id-my-ml-project-{env}", "AcrPull", acr),
                     (f"endpoint-principal-{endpoint}", "AcrPull", acr),
                     ("principal-id-my-ml-project", role, workspace)}
        # the workspace and identity are created in the environment's own subscription
        for command in (["ml", "workspace", "create"], ["identity", "create"]):
            assert any(c["args"][:len(command)] == command and c["args"][c["args"].index("--subscription") + 1] == sub
                       for c in calls if "--subscription" in c["args"]), (env, command)
        # the endpoint exists before the first deploy, from the committed spec, so its identity may pull
        assert any(c["args"][:3] == ["ml", "online-endpoint", "create"] and f"infra/azure/ml/endpoint-{env}.yml" in c["args"]
                   for c in calls)
        (connection,) = [json.loads(c["files"]["--service-endpoint-configuration"]) for c in calls
                         if c["args"][:3] == ["devops", "service-endpoint", "create"]
                         and f"my-ml-project-{env}" in c["files"]["--service-endpoint-configuration"]]
        assert connection["authorization"]["scheme"] == "WorkloadIdentityFederation"
        assert connection["authorization"]["parameters"]["serviceprincipalid"] == f"client-id-my-ml-project-{env}"
        assert connection["data"]["subscriptionId"] == sub
        assert any(c["args"][:3] == ["identity", "federated-credential", "create"]
                   and f"sc://org/project/conn-my-ml-project-{env}" in c["args"] for c in calls)
    # least privilege: exactly these assignments, each on one resource, none on a group or subscription
    assert _assignments(calls) == expected
    assert all("/providers/" in scope for _, _, scope in expected)
    (definition,) = [json.loads(c["files"]["--role-definition"]) for c in calls
                     if c["args"][:3] == ["role", "definition", "create"]]
    assert definition["Name"] == role and all(action.endswith("/read") for action in definition["Actions"])
    (created,) = [c for c in calls if c["args"][:3] == ["ml", "registry", "create"]]
    assert yaml.safe_load(created["files"]["--file"])["name"] == registry.rsplit("/", 1)[-1]
    # the pipeline deploys each environment through its own connection
    stages = {s["stage"]: s for s in _pipeline(repo)["stages"]}
    assert stages["DeployStaging"]["variables"] == {"serviceConnection": "my-ml-project-staging"}
    assert stages["DeployProd"]["variables"] == {"serviceConnection": "my-ml-project-prod"}


def test_a_single_render_has_no_multi_or_image_parts(v2: Path) -> None:
    text = (v2 / "infra" / "azure" / "setup.sh").read_text() + (v2 / "azure-pipelines.yml").read_text()
    for word in ("registry create", "release reader", "acr build", "MODEL_IMAGE", "serviceConnection: \"my-ml-project-staging\""):
        assert word not in text, word


def test_v1_renders_none_of_the_v2_only_files(v1: Path) -> None:
    """serving: image and isolation: multi are refused with azure_ml_sdk v1 (copier validators): their
    modules and tests, which import the v2 target, are not rendered (copier.yml _exclude)."""
    for path in ("tests/test_azure_image.py", "tests/test_azure_isolation.py", "src/my_ml_project/targets/azure/image.py"):
        assert not (v1 / path).exists(), path


def test_retrain_trigger_queues_the_pipeline_keylessly_unless_a_run_is_going(v2: Path) -> None:
    flow = json.loads((v2 / "infra" / "azure" / "retrain-trigger.json").read_text())
    assert flow["triggers"]["eventGrid"]["type"] == "Request"
    validation = flow["actions"]["Validate_subscription"]
    assert "SubscriptionValidationEvent" in json.dumps(validation["expression"])
    assert "validationResponse" in validation["actions"]["Answer_validation"]["inputs"]["body"]
    work = validation["else"]["actions"]
    assert "statusFilter=notStarted,inProgress" in work["Runs_in_progress"]["inputs"]["uri"]
    guard = work["Queue_unless_running"]
    assert guard["actions"]["Skipped"]["inputs"]["body"].startswith("skipped: run")
    run = guard["else"]["actions"]["Run_pipeline"]["inputs"]
    assert run["method"] == "POST" and "/_apis/pipelines/" in run["uri"] and run["uri"].endswith("/runs?api-version=7.1")
    reason = run["body"]["templateParameters"]["runReason"]
    assert "Microsoft.Storage.BlobCreated" in reason and "'data'" in reason and "'alarm'" in reason
    calls = [work["Runs_in_progress"]["inputs"], run]
    for http in calls:  # the workflow's managed identity, for Azure DevOps: no key, token or PAT
        assert http["authentication"] == {"type": "ManagedServiceIdentity",
                                          "audience": "499b84ac-1321-427f-aa17-267ca6975798"}
    text = json.dumps(flow).lower()
    assert "authorization" not in text and "sig=" not in text


def test_pipeline_retrains_on_schedule_data_and_alarm(v2: Path) -> None:
    pipeline = _pipeline(v2)
    mlops = yaml.safe_load((v2 / "mlops.yaml").read_text())
    (schedule,) = pipeline["schedules"]
    assert schedule["cron"] == mlops["monitoring"]["retrain_schedule"] and schedule["always"] == "true"
    assert schedule["branches"]["include"] == ["main"]
    assert pipeline["lockBehavior"] == "sequential"
    (parameter,) = pipeline["parameters"]
    assert parameter["name"] == "runReason" and parameter["default"] == "auto"
    assert set(parameter["values"]) == {"auto", "push", "pull_request", "schedule", "data", "alarm", "batch"}
    reason = pipeline["variables"]["runReason"]
    assert "${{ parameters.runReason }}" in reason and "'Batch on schedule'), 'batch', 'schedule')" in reason
    (train,) = [r for r in _runs(pipeline, "Train")]
    first = train["script"].splitlines()[0]
    assert first == 'case "$(runReason)" in schedule|data|alarm) only_new=--if-new-data ;; *) only_new= ;; esac'
    assert 'train --target "$(deployTarget)" $only_new' in train["script"]


def test_a_batch_run_scores_and_never_trains_or_deploys(v2: Path) -> None:
    """runReason=batch (the 'Batch on schedule' schedule, or queued): only Test and Batch run; Batch
    judges a sample of batch.input for drift before it scores, both on prod's version."""
    pipeline = _pipeline(v2)
    stages = {s["stage"]: s for s in pipeline["stages"]}
    reason = pipeline["variables"]["runReason"]
    assert "iif(eq(variables['Build.CronSchedule.DisplayName'], 'Batch on schedule'), 'batch', 'schedule')" in reason
    assert stages["Train"]["condition"] == "and(succeeded(), ne(variables.runReason, 'batch'))"
    for later in ("Register", "DeployStaging", "DeployProd"):  # each needs Train, skipped in a batch run
        assert "condition" not in stages[later] or "succeeded()" in stages[later]["condition"]
    assert stages["Batch"]["dependsOn"] == "Test"
    assert stages["Batch"]["condition"] == "and(succeeded(), eq(variables.runReason, 'batch'))"
    drift, score = (r["script"] for r in _runs(pipeline, "Batch"))
    mkdir, sample, monitor = drift.splitlines()
    assert mkdir == "mkdir -p artifacts"  # the report is published even when the drift check fails
    assert sample == "sample=$(python -m my_ml_project.targets.azure.batch_input sample artifacts/batch-input.csv)"
    assert monitor == 'python -m my_ml_project monitor --target "$(deployTarget)" --env prod --input "$sample"'
    assert score == 'python -m my_ml_project batch --target "$(deployTarget)" --env prod'
    # the batch schedule is the user's to add with batch.schedule: shown, commented, with its displayName
    text = (v2 / "azure-pipelines.yml").read_text()
    assert "  #   displayName: Batch on schedule\n" in text


@pytest.mark.slow
@pytest.mark.xdist_group("azure-generated")
# v2 (the default render): its whole suite runs in the Azure Pipelines file's test step
# (tests/localci/test_generated_repos.py); here the renders that step does not see.
@pytest.mark.parametrize("flavour,label", [("multi", "azure"), ("v1", "azure-v1")])
def test_generated_repo_passes_its_own_tests(flavour: str, label: str, request) -> None:
    repo = request.getfixturevalue(flavour)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    python = project_python(repo, ["local", "dev", "azure"], label=label)
    # Only the Azure tests: the rest of the generated suite is the foundation's, tested there.
    tests = ["tests/test_azure_v1.py"] if flavour == "v1" else [
        "tests/test_azure.py", "tests/test_azure_monitor.py", "tests/test_azure_batch.py", "tests/test_azure_image.py",
        "tests/test_azure_isolation.py"]
    run = run_generated_tests(repo, python, *tests)  # warnings fail, as the generated pytest config says
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert "passed" in summary and "skipped" not in summary and "deselected" not in summary, summary
