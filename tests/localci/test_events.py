"""`ci run --event`: each service's variables for a push, a pull request, a schedule, new data or
an alarm, taken from what the repository declares (its CI file, infra/), and the CI file's own
conditions deciding what runs."""

from __future__ import annotations

import json
import textwrap

import pytest
from click.testing import CliRunner

from mlops_gen.localci import azure_template, azure_triggers, cloudbuild_triggers, codebuild_triggers
from mlops_gen.localci.command import ci
from mlops_gen.localci.errors import CIUsageError
from mlops_gen.localci.events import Event
from mlops_gen.localci.workspace import GitInfo

from .conftest import make_repo

pytestmark = pytest.mark.xdist_group("localci")
GIT = GitInfo(True, "a" * 40, "feature/x", "", "repo", "https://github.com/o/repo.git", "msg", "me", "me@x")

# -- Azure Pipelines -------------------------------------------------------------------------------
AZURE = """
    parameters:
      - {name: runReason, type: string, default: auto, values: [auto, push, pull_request, schedule, data, alarm]}
    trigger:
      branches: {include: [main]}
    pr:
      branches: {include: [release]}
    variables:
      deployTarget: $[ iif(eq(variables['Build.Reason'], 'PullRequest'), 'local', 'azure') ]
      isPullRequest: $[eq(variables['Build.Reason'], 'PullRequest')]
      runReason: $[ iif(ne('${{ parameters.runReason }}', 'auto'), '${{ parameters.runReason }}', iif(eq(variables['Build.Reason'], 'Schedule'), 'schedule', 'push')) ]
    stages:
      - stage: Build
        jobs:
          - job: Build
            steps:
              - script: echo "target=$(deployTarget) reason=$(Build.Reason) into=$(System.PullRequest.TargetBranch) run=$(runReason)"
                displayName: Show
              - ${{ if eq(variables['Build.Reason'], 'Schedule') }}:
                  - script: echo scheduled
                    displayName: Scheduled only
      - stage: Deploy
        condition: and(succeeded(), eq(variables.isPullRequest, false))
        jobs:
          - job: Deploy
            steps:
              - script: echo deploy
                displayName: Deploy
    """


def test_azure_pull_request_sets_build_reason_and_the_pipeline_picks_local(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": AZURE})
    r = run_ci(repo, "azure", "--event", "pull_request")
    assert r.code == 0, r.output
    assert "target=local reason=PullRequest into=refs/heads/release" in r.log("Show")
    assert r.status("Deploy") == "skipped"  # the stage condition reads isPullRequest
    assert r.report["event"]["name"] == "pull_request"
    assert r.report["event"]["predefined"]["Build.SourceBranch"] == "refs/pull/1/merge"
    push = run_ci(repo, "azure")  # the default event: a push, deploying to azure
    assert push.code == 0, push.output
    assert "target=azure reason=IndividualCI" in push.log("Show") and push.status("Deploy") == "passed"


def test_azure_schedule_needs_a_schedules_block(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": AZURE})
    r = run_ci(repo, "azure", "--event", "schedule")
    assert r.code == 2 and "declares no schedule" in r.output and "azure-pipelines.yml" in r.output
    scheduled = "schedules:\n  - cron: '0 3 * * 1'\n    branches: {include: [main]}\n" + textwrap.dedent(AZURE)
    repo = make_repo(tmp_path / "s", {"azure-pipelines.yml": scheduled})
    r = run_ci(repo, "azure", "--event", "schedule")
    assert r.code == 0, r.output
    assert "reason=Schedule" in r.log("Show") and r.status("Scheduled only") == "passed"  # ${{ if }} saw it
    assert "run=schedule" in r.log("Show")  # the pipeline's own derivation of runReason
    assert "0 3 * * 1" in r.report["event"]["declared_by"]


def test_azure_data_is_a_queued_run_with_run_reason_and_pr_none_refuses_pull_requests(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": AZURE})
    r = run_ci(repo, "azure", "--event", "data")
    assert r.code == 0, r.output
    assert "reason=Manual" in r.log("Show") and "run=data" in r.log("Show")  # the runtime parameter
    assert r.report["event"]["payload"].endswith("azure-data.json")
    # a pipeline without that parameter gets runReason as a queue-time variable
    queued = azure_triggers.resolve(Event("alarm", True), {"steps": []}, "azure-pipelines.yml", GIT)
    assert queued.variables == {"runReason": "alarm"} and queued.predefined["Build.Reason"] == "Manual"
    with pytest.raises(CIUsageError, match="pr: none"):
        azure_triggers.resolve(Event("pull_request", True), {"pr": "none", "steps": []}, "azure-pipelines.yml", GIT)


def test_azure_webhook_resource_gets_the_payload_as_a_parameter(tmp_path):
    doc = {"resources": {"webhooks": [{"webhook": "drift", "connection": "c"}]}, "steps": []}
    payload = tmp_path / "alert.json"
    payload.write_text(json.dumps({"data": {"essentials": {"alertRule": "drift-rule"}}}))
    t = azure_triggers.resolve(Event("alarm", True, payload), doc, "azure-pipelines.yml", GIT)
    assert t.predefined["Build.Reason"] == "ResourceTrigger"
    assert t.parameters["drift"]["data"]["essentials"]["alertRule"] == "drift-rule"


# -- Cloud Build ------------------------------------------------------------------------------------
CLOUDBUILD = """
    steps:
      - name: bash
        args: [-c, 'echo "reason=${_RUN_REASON} target=${_DEPLOY_TARGET} object=${_OBJECT}"']
    substitutions:
      _RUN_REASON: push
      _DEPLOY_TARGET: gcp
      _OBJECT: none
    """
PUSH_TRIGGER = """
    name: staging
    github: {owner: o, name: repo, push: {branch: ^main$}}
    filename: cloudbuild.yaml
    substitutions: {_DEPLOY_TARGET: gcp}
    """
PR_TRIGGER = """
    name: pr
    github: {owner: o, name: repo, pullRequest: {branch: ^main$}}
    filename: cloudbuild.yaml
    substitutions: {_DEPLOY_TARGET: local}
    """
DATA_TRIGGER = """
    name: new-data
    pubsubConfig: {topic: projects/p/topics/new-data}
    sourceToBuild: {uri: https://github.com/o/repo, ref: refs/heads/main, repoType: GITHUB}
    gitFileSource: {path: cloudbuild.yaml, uri: https://github.com/o/repo, repoType: GITHUB}
    substitutions:
      _RUN_REASON: data
      _OBJECT: gs://$(body.message.attributes.bucketId)/$(body.message.data.name)
    """


def _gcp_repo(tmp_path, **triggers):
    return make_repo(tmp_path / "r", {"cloudbuild.yaml": CLOUDBUILD, **{
        f"infra/gcp/triggers/{name}.yaml": text for name, text in triggers.items()}})


def test_cloud_build_data_runs_the_pubsub_trigger_with_the_payload_bound(tmp_path, run_ci):
    repo = _gcp_repo(tmp_path, staging=PUSH_TRIGGER, pr=PR_TRIGGER, data=DATA_TRIGGER)
    r = run_ci(repo, "gcp", "--event", "data")
    assert r.code == 0, r.output
    # the bundled fixture: a GCS OBJECT_FINALIZE notification, its data base64 JSON
    assert "reason=data target=gcp object=gs://example-mlops-data/data/train.csv" in r.log("#0")
    assert r.report["event"]["declared_by"].startswith("infra/gcp/triggers/data.yaml")
    custom = tmp_path / "msg.json"
    custom.write_text(json.dumps({"message": {"attributes": {"bucketId": "b"}, "data": {"name": "new.csv"}}}))
    r = run_ci(repo, "gcp", "--event", "data", "--payload", str(custom))
    assert r.code == 0, r.output
    assert "object=gs://b/new.csv" in r.log("#0") and r.report["event"]["payload"] == str(custom)


def test_cloud_build_picks_the_trigger_of_the_event_or_exits_2_naming_it(tmp_path):
    repo = _gcp_repo(tmp_path, staging=PUSH_TRIGGER, pr=PR_TRIGGER)
    pr = cloudbuild_triggers.resolve(Event("pull_request", True), repo, None, "cloudbuild.yaml", GIT)
    assert pr.variables == {"_DEPLOY_TARGET": "local"} and pr.predefined["_BASE_BRANCH"] == "main"
    push = cloudbuild_triggers.resolve(Event(), repo, None, "cloudbuild.yaml", GIT)
    assert push.variables == {"_DEPLOY_TARGET": "gcp"} and "staging" in push.declared_by
    with pytest.raises(CIUsageError, match=r"--event alarm: no trigger .*infra/gcp/triggers"):
        cloudbuild_triggers.resolve(Event("alarm", True), repo, None, "cloudbuild.yaml", GIT)
    # no trigger files: a push runs the build file as it is (as before --event existed)
    bare = make_repo(tmp_path / "bare", {"cloudbuild.yaml": CLOUDBUILD})
    assert cloudbuild_triggers.resolve(Event(), bare, None, "cloudbuild.yaml", GIT).variables == {}


# -- CodeBuild -------------------------------------------------------------------------------------
BUILDSPEC = """
    version: 0.2
    env:
      variables: {DEPLOY_TARGET: aws, RUN_REASON: push}
    phases:
      build:
        commands:
          - |
            if [ "${CODEBUILD_WEBHOOK_EVENT#PULL_REQUEST}" != "${CODEBUILD_WEBHOOK_EVENT:-}" ]; then
              echo "pull request into ${CODEBUILD_WEBHOOK_BASE_REF}"
            fi
          - echo "target=${DEPLOY_TARGET} reason=${RUN_REASON} key=${DATA_KEY:-}"
    """
PR_PROJECT = """
    Parameters:
      BranchName: {Type: String, Default: trunk}
      ModelName: {Type: String, Default: iris}
    Resources:
      PullRequestProject:
        Type: AWS::CodeBuild::Project
        Properties:
          Environment:
            EnvironmentVariables:
              - {Name: DEPLOY_TARGET, Value: local}
              - {Name: MODEL, Value: !Sub "${ModelName}-pr"}
          Triggers:
            Webhook: true
            FilterGroups:
              - - {Type: EVENT, Pattern: "PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED"}
                - {Type: BASE_REF, Pattern: !Sub "^refs/heads/${BranchName}$"}
    """
RETRAIN = """
      Pipeline:
        Type: AWS::CodePipeline::Pipeline
        Properties:
          Variables: [{Name: RUN_REASON, DefaultValue: push}]
          Stages:
            - Name: Build
              Actions:
                - Name: Build
                  ActionTypeId: {Category: Build, Owner: AWS, Provider: CodeBuild, Version: "1"}
                  Configuration:
                    ProjectName: !Ref BuildProject
                    EnvironmentVariables: '[{"name": "RUN_REASON", "value": "#{variables.RUN_REASON}"}]'
      Starter:
        Type: AWS::StepFunctions::StateMachine
        Properties:
          Definition:
            StartAt: Start
            States:
              Start:
                Type: Task
                Resource: arn:aws:states:::aws-sdk:codepipeline:startPipelineExecution
                Parameters:
                  Name: x
                  Variables: [{Name: RUN_REASON, Value.$: $.reason}]
                End: true
      Weekly:
        Type: AWS::Scheduler::Schedule
        Properties:
          ScheduleExpression: cron(0 3 ? * MON *)
          Target: {Arn: !Ref Starter, RoleArn: r, Input: '{"reason": "schedule"}'}
      NewData:
        Type: AWS::Events::Rule
        Properties:
          EventPattern: {source: [aws.s3], detail-type: [Object Created]}
          Targets:
            - Arn: !GetAtt BuildProject.Arn
              Id: build
              InputTransformer:
                InputPathsMap: {key: $.detail.object.key}
                InputTemplate: >-
                  {"environmentVariablesOverride": [{"name": "RUN_REASON", "value": "data"},
                  {"name": "DATA_KEY", "value": "s3-<key>"}]}
      Drift:
        Type: AWS::Events::Rule
        Properties:
          EventPattern: {source: [aws.cloudwatch], detail-type: [CloudWatch Alarm State Change]}
          Targets: [{Arn: !Ref Pipeline, Id: p}]
    """


def test_codebuild_pull_request_gets_the_pr_project_environment(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": BUILDSPEC, "infra/aws/pipeline.yaml": PR_PROJECT})
    r = run_ci(repo, "aws", "--event", "pull_request")
    assert r.code == 0, r.output
    assert "pull request into refs/heads/trunk" in r.log("if [")
    assert "target=local" in r.log("echo")  # the project's environment beats the buildspec's
    assert r.report["event"]["variables"] == {"DEPLOY_TARGET": "local", "MODEL": "iris-pr"}
    assert r.report["event"]["predefined"]["CODEBUILD_WEBHOOK_TRIGGER"] == "pr/1"


def test_codebuild_retraining_gets_what_the_rules_pass_through_to_the_build(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": BUILDSPEC,
                                      "infra/aws/pipeline.yaml": PR_PROJECT.rstrip(" ") + RETRAIN[1:]})

    def passed(event: str) -> dict:
        return codebuild_triggers.resolve(Event(event, True), repo, "buildspec.yml", GIT).variables

    # schedule -> Step Functions -> startPipelineExecution(RUN_REASON=$.reason) -> #{variables.RUN_REASON}
    assert passed("schedule") == {"RUN_REASON": "schedule"}
    assert passed("push") == {"RUN_REASON": "push"}  # the pipeline variable's default
    # a rule that starts the pipeline itself passes nothing: the rehearsal shows RUN_REASON stays push
    assert passed("alarm") == {"RUN_REASON": "push"}
    r = run_ci(repo, "aws", "--event", "data")  # an InputTransformer reads the S3 event (bundled fixture)
    assert r.code == 0, r.output
    assert "reason=data key=s3-data/train.csv" in r.log("echo")
    assert r.report["event"]["payload"].endswith("aws-data.json") and not r.report["event"]["predefined"]
    bare = make_repo(tmp_path / "bare", {"buildspec.yml": BUILDSPEC, "infra/aws/pipeline.yaml": PR_PROJECT})
    with pytest.raises(CIUsageError, match=r"--event alarm: no EventBridge rule .*aws.cloudwatch"):
        codebuild_triggers.resolve(Event("alarm", True), bare, "buildspec.yml", GIT)
    # without infra/aws: the reason is set and the payload only recorded
    (bare / "infra/aws/pipeline.yaml").unlink()
    alarm = codebuild_triggers.resolve(Event("alarm", True), bare, "buildspec.yml", GIT)
    assert alarm.variables == {"RUN_REASON": "alarm"} and alarm.payload.endswith("aws-alarm.json")
    assert any("recorded only" in n for n in alarm.notes)


# -- the options -----------------------------------------------------------------------------------
def test_bad_event_or_payload_exits_2_naming_the_option(tmp_path):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": BUILDSPEC})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    for args, option in ((["--event", "deploy"], "--event"), (["--event", "data", "--payload", str(bad)], "--payload"),
                         (["--payload", str(bad)], "--payload")):
        out = CliRunner().invoke(ci, ["run", "--provider", "aws", "--repo", str(repo), "--no-venv", *args])
        assert out.exit_code == 2 and option in out.output, (args, out.output)


# -- the generated repository's own CI files --------------------------------------------------------
@pytest.mark.parametrize("event", ["push", "pull_request", "schedule", "data", "alarm"])
def test_every_event_the_generated_ci_files_declare_reaches_its_run_reason(rendered, event):
    repo = rendered()
    git = GitInfo(True, "a" * 40, "main", "", "repo", "", "", "", "")
    aws = codebuild_triggers.resolve(Event(event, True), repo, "buildspec.yml", git)
    if event == "pull_request":  # the pull-request project; buildspec.yml tells it by the webhook event
        assert aws.predefined["CODEBUILD_WEBHOOK_EVENT"] == "PULL_REQUEST_CREATED", aws
    else:  # through the infra's rule -> state machine -> pipeline variable -> CodeBuild environment
        assert aws.variables.get("RUN_REASON") == event, aws
    doc = azure_template.load_yaml(repo / "azure-pipelines.yml")
    azure = azure_triggers.resolve(Event(event, True), doc, "azure-pipelines.yml", git)
    assert azure.predefined["Build.Reason"] == azure_triggers.REASONS[event]
    if event in ("data", "alarm"):
        assert azure.parameters == {"runReason": event}, azure
    gcp = cloudbuild_triggers.resolve(Event(event, True), repo, None, "cloudbuild.yaml", git)
    assert gcp.variables["_RUN_REASON"] == event and gcp.build_file == "cloudbuild.yaml", gcp
