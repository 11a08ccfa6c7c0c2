"""AWS: the rendered buildspecs (structure, thin-sequencer rules, `mlops-gen validate --strict`), the
CodePipeline stack (cfn-lint, what it must and must not contain), and the generated repo's own
offline AWS tests (moto server, botocore model checks, SageMaker pipeline definition) in a cached venv."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from cfnlint.decode import decode_str

from tests.helpers import project_python, render, run_generated_tests

BIN = Path(sys.executable).parent
PACKAGE = "my_ml_project"
STAGE = re.compile(rf'^python -m {PACKAGE} (\w+) --target "\$\{{DEPLOY_TARGET\}}" --(?:env|to) "\$\{{ENVIRONMENT\}}"'
                   r'(?: --release "\$\{RELEASE_RECORD\}")?$')
# The guards a command may carry, joined by &&: the target switch, "the build so far succeeded", "(not) a pull
# request", "(not) a batch run", the rollback test, and "started by a schedule, new data or a drift alarm"
# (the one guard whose else branch runs the same stage, without --if-new-data).
REASONS = ("schedule", "data", "alarm")
RETRAIN_CONDITION = " || ".join(f'[ "${{RUN_REASON:-push}}" = "{r}" ]' for r in REASONS)
CONDITION = (r'\[ "\$\{DEPLOY_TARGET\}" = "aws" \]|\[ "\$\{PULL_REQUEST:-0\}" !?= "1" \]'
             r'|\[ "\$\{CODEBUILD_BUILD_SUCCEEDING:-0\}" = "1" \]|\[ "\$\{RUN_REASON:-push\}" !?= "batch" \]'
             r'|\[ !? ?-f "artifacts/(?:deployed|smoked)-\$\{ENVIRONMENT\}.json" \]')
GUARD = re.compile(rf'^(?:if|elif) (?:(?:{CONDITION})(?: && (?:{CONDITION}))*|{re.escape(RETRAIN_CONDITION)}); then$')
SAMPLE = f"python -m {PACKAGE}.targets.aws.batch sample --to artifacts/batch-sample.csv"
# serving: image. The image step's two commands: the reference it pushes (kept for the later commands: one shell
# per build), then build, push and scan (targets/aws/image.py).
EXPORT = ('export MODEL_IMAGE="${MODEL_IMAGE_REPOSITORY:?set by infra/aws/pipeline.yaml}:'
          '${CODEBUILD_RESOLVED_SOURCE_VERSION:?}"')
PUBLISH = f'python -m {PACKAGE}.targets.aws.image publish "${{MODEL_IMAGE}}"'
STAGING_ACCOUNT, PROD_ACCOUNT = "222233334444", "555566667777"
MULTI = {"isolation": "multi", "aws_staging_account_id": STAGING_ACCOUNT, "aws_prod_account_id": PROD_ACCOUNT}
PR_SWITCH = ('if [ "${CODEBUILD_WEBHOOK_EVENT#PULL_REQUEST}" != "${CODEBUILD_WEBHOOK_EVENT:-}" ]; then\n'
             '  export DEPLOY_TARGET=local PULL_REQUEST=1\nfi\n')
TOOLS = ("python -m pip install ", "python -m ruff check ", "python -m pytest ", "uvx --from ")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, rendered) -> Path:
    return Path(shutil.copytree(rendered(clouds=["aws"]), tmp_path_factory.mktemp("aws") / "repo"))


def _buildspec(repo: Path, name: str) -> dict:
    return yaml.safe_load((repo / name).read_text())


def _stage_sequence(commands: list[str]) -> list[str]:
    """The stages a phase runs, in order; every command must be a stage, a tool, or a guarded stage
    (`if/elif/else` branches of one command each: the stage, or an echo saying why it is skipped).
    A guarded stage reads `stage?`; a retraining guard's two branches are one stage, `train`."""
    stages = []
    for command in commands:
        lines = [line.strip() for line in command.strip().splitlines()]
        if len(lines) == 1 and (m := STAGE.match(lines[0])):
            stages.append(m.group(1))
        elif len(lines) == 1 and lines[0].startswith(TOOLS):
            words = lines[0].split()  # python -m TOOL ... | uvx --from SPEC mlops-gen VERB ...
            stages.append(words[2] if words[0] == "python" else words[4])
        else:
            stages.append(_guarded(command, lines))
    return stages


def _guarded(command: str, lines: list[str]) -> str:
    assert lines[-1] == "fi", command
    branches, body = [], None
    for line in lines[:-1]:
        if GUARD.match(line) or line == "else":
            assert line.startswith("if") == (body is None), command
            body = []
            branches.append((line, body))
        else:
            assert body is not None, command
            body.append(line)
    assert all(len(b) == 1 for _, b in branches), f"one command per guarded branch: {command}"
    names = set()
    for head, [line] in branches:
        if line.startswith("echo "):
            continue
        if RETRAIN_CONDITION in head:
            assert line.endswith(" --if-new-data") and STAGE.match(line.removesuffix(" --if-new-data")), command
            line = line.removesuffix(" --if-new-data")
        if line == SAMPLE:
            names.add("sample")
        elif line in (EXPORT, PUBLISH):
            names.add("export-image" if line == EXPORT else "publish-image")
        else:
            assert line.startswith(f"python -m {PACKAGE} ") or line.startswith(TOOLS), command
            names.add(line.split()[3])
    assert len(names) == 1, f"one stage per guarded command: {command}"
    retrain = any(RETRAIN_CONDITION in head for head, _ in branches) and branches[-1][0] == "else"
    return names.pop() + ("" if retrain and len(branches) == 2 else "?")


def test_buildspec_is_a_thin_sequencer_with_one_switch(repo: Path) -> None:
    spec = _buildspec(repo, "buildspec.yml")
    assert spec["version"] == 0.2
    assert spec["env"]["shell"] == "bash"
    assert spec["env"]["variables"]["DEPLOY_TARGET"] == "aws"
    phases = spec["phases"]
    assert list(phases) == ["install", "pre_build", "build", "post_build"]
    assert phases["install"]["runtime-versions"] == {"python": "3.11"}
    # every cloud of the repo: its offline tests run in pre_build
    # a pull request (CodeBuild webhook event PULL_REQUEST_*) switches to the local target first
    assert phases["install"]["commands"] == [PR_SWITCH, 'python -m pip install --quiet ".[${DEPLOY_TARGET:?},dev,aws]"']
    # the validator runs in an environment of its own, at the release that rendered the repo
    assert 'uvx --from "mlops-gen==0.1.0" mlops-gen validate --strict .' in phases["pre_build"]["commands"]
    assert _stage_sequence(phases["pre_build"]["commands"]) == ["ruff", "validate", "pytest"]
    # pull requests stop after the gate: register, deploy and smoke are guarded by PULL_REQUEST; a batch run
    # (RUN_REASON batch) runs the first three and none of the others
    assert _stage_sequence(phases["build"]["commands"]) == [
        "sample?", "monitor?", "batch?", "train?", "evaluate?", "gate?", "register?", "pipeline?"]
    assert spec["env"]["variables"]["RUN_REASON"] == "push"
    assert "--print-definition > artifacts/sagemaker-pipeline.json" in phases["build"]["commands"][-1]
    assert _stage_sequence(phases["post_build"]["commands"]) == ["deploy?", "smoke?"]
    assert all("CODEBUILD_BUILD_SUCCEEDING" in c and "PULL_REQUEST" in c for c in phases["post_build"]["commands"])
    assert spec["reports"]["unit-tests"]["file-format"] == "JUNITXML"
    assert "--junitxml=reports/junit.xml" in phases["pre_build"]["commands"][-1]
    assert spec["cache"]["paths"] == [spec["env"]["variables"]["PIP_CACHE_DIR"] + "/**/*"]
    assert spec["artifacts"]["files"] == ["**/*"]
    text = (repo / "buildspec.yml").read_text()
    assert "|| true" not in text and "on-failure" not in text
    assert "| " not in text.replace("- |", "").replace("] || [", "] or ["), "a pipe hides the status of its left side"


def test_prod_buildspec_deploys_exactly_the_version_staging_smoke_tested(repo: Path) -> None:
    spec = _buildspec(repo, "buildspec-prod.yml")
    assert spec["version"] == 0.2 and spec["env"]["shell"] == "bash"
    variables = spec["env"]["variables"]
    assert variables == {**variables, "DEPLOY_TARGET": "aws", "ENVIRONMENT": "prod"}
    # the record buildspec.yml's smoke test writes on staging, in the workspace CodePipeline hands over
    assert variables["RELEASE_RECORD"] == "artifacts/smoked-staging.json"
    assert _buildspec(repo, "buildspec.yml")["env"]["variables"]["ENVIRONMENT"] == "staging"
    assert spec["phases"]["install"]["commands"] == ['python -m pip install --quiet ".[${DEPLOY_TARGET:?}]"']
    build = spec["phases"]["build"]["commands"]
    assert _stage_sequence(build) == ["promote", "deploy", "smoke"]
    assert all('--release "${RELEASE_RECORD}"' in c for c in build[:2])  # never "the latest approved"
    assert _stage_sequence(spec["phases"]["post_build"]["commands"]) == ["rollback?"]


def test_python_version_answer_reaches_both_buildspecs(tmp_path: Path) -> None:
    repo = render(tmp_path / "repo", clouds=["aws"], python_version="3.12")
    for name in ("buildspec.yml", "buildspec-prod.yml"):
        assert _buildspec(repo, name)["phases"]["install"]["runtime-versions"] == {"python": "3.12"}


def test_validate_strict_accepts_the_rendered_files(repo: Path) -> None:
    run = subprocess.run([str(BIN / "mlops-gen"), "validate", "--strict", str(repo)], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 file(s) checked" in run.stdout + run.stderr


def test_stack_passes_cfn_lint(repo: Path) -> None:
    run = subprocess.run([str(BIN / "cfn-lint"), "--regions", "us-east-1", "eu-west-2", "--",
                          str(repo / "infra" / "aws" / "pipeline.yaml")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_stack_wiring_and_security(repo: Path) -> None:
    text = (repo / "infra" / "aws" / "pipeline.yaml").read_text()
    template, errors = decode_str(text)
    assert not errors
    resources = template["Resources"]
    types = {r["Type"] for r in resources.values()}
    assert "AWS::CodeConnections::Connection" in types
    assert not {t for t in types if t.startswith("AWS::CodeCommit") or t in ("AWS::IAM::AccessKey", "AWS::IAM::User")}
    assert "CodeCommit" not in text
    bucket = resources["ArtifactBucket"]["Properties"]
    assert bucket["VersioningConfiguration"]["Status"] == "Enabled"
    assert all(bucket["PublicAccessBlockConfiguration"].values()) and len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
    stages = resources["Pipeline"]["Properties"]["Stages"]
    assert [s["Name"] for s in stages] == ["Source", "TrainTestStaging", "ApproveProduction", "Production"]
    source = stages[0]["Actions"][0]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    approval = stages[2]["Actions"][0]
    assert approval["ActionTypeId"]["Provider"] == "Manual" and approval["Configuration"]["NotificationArn"]
    specs = {resources[name]["Properties"]["Source"]["BuildSpec"] for name in ("BuildProject", "ProdDeployProject")}
    assert specs == {"buildspec.yml", "buildspec-prod.yml"}
    assert (repo / "buildspec.yml").exists() and (repo / "buildspec-prod.yml").exists()
    # least privilege: no wildcard actions, PassRole only to SageMaker
    for name, resource in resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in resource["Properties"].get("Policies", []):
            for statement in _unconditional(policy["PolicyDocument"]["Statement"]):
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], (name, actions)
                if "iam:PassRole" in actions:
                    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert "aws cloudformation deploy" in text  # the one documented command


def _unconditional(statements: list) -> list[dict]:
    """Statements with `!If [condition, statement, AWS::NoValue]` taken as their statement."""
    out = []
    for statement in statements:
        if set(statement) == {"Fn::If"}:
            out += [s for s in statement["Fn::If"][1:] if s != {"Ref": "AWS::NoValue"}]
        else:
            out.append(statement)
    return out


def test_render_without_aws_has_no_aws_files(tmp_path: Path) -> None:
    repo = render(tmp_path / "repo", clouds=["gcp"])
    assert not (repo / "buildspec.yml").exists() and not (repo / "buildspec-prod.yml").exists()
    assert not (repo / "infra" / "aws").exists()
    assert not list(repo.rglob("*aws*")) and not list(repo.rglob("sagemaker*"))


@pytest.mark.parametrize(("reason", "if_new_data"), [
    (None, False), ("push", False), ("pull_request", False), ("schedule", True), ("data", True), ("alarm", True),
    ("batch", None)])
def test_train_adds_if_new_data_exactly_on_a_retraining_run(repo: Path, reason, if_new_data: bool | None) -> None:
    """The train step of buildspec.yml, run by bash with `python` echoing its arguments."""
    [train] = [c for c in _buildspec(repo, "buildspec.yml")["phases"]["build"]["commands"] if " train " in c]
    env = {"PATH": "/usr/bin:/bin", "DEPLOY_TARGET": "aws", "ENVIRONMENT": "staging", **({"RUN_REASON": reason} if reason else {})}
    run = subprocess.run(["bash", "-euc", f'python() {{ echo "$@"; }}\n{train}'], env=env, capture_output=True,
                         text=True, check=True)
    if if_new_data is None:  # a batch run trains nothing
        assert run.stdout.startswith("train, evaluate, gate, register, deploy, smoke: not in a batch run")
        return
    assert run.stdout.split() == ["-m", PACKAGE, "train", "--target", "aws", "--env", "staging",
                                  *(["--if-new-data"] if if_new_data else [])]


def _run_phases(repo: Path, reason: str, cwd: Path) -> list[str]:
    """The build and post_build commands of buildspec.yml, run by bash in order as CodeBuild runs them
    (one shell), `python` echoing its arguments: what each line would run, and the echoed skips."""
    spec = _buildspec(repo, "buildspec.yml")["phases"]
    script = "\n".join(["python() { echo \"python $*\"; }", *spec["build"]["commands"], "export CODEBUILD_BUILD_SUCCEEDING=1",
                        *spec["post_build"]["commands"]])
    env = {"PATH": "/usr/bin:/bin", "DEPLOY_TARGET": "aws", "ENVIRONMENT": "staging", "RUN_REASON": reason}
    (cwd / "artifacts").mkdir(exist_ok=True)
    run = subprocess.run(["bash", "-euc", script], env=env, capture_output=True, text=True, check=True, cwd=cwd)
    return run.stdout.splitlines()


def test_a_batch_run_checks_drift_then_scores_and_trains_nothing(repo: Path, tmp_path: Path) -> None:
    ran = [line for line in _run_phases(repo, "batch", tmp_path) if line.startswith("python ")]
    assert ran == [
        f"python {SAMPLE.removeprefix('python ')}",
        f"python -m {PACKAGE} monitor --target aws --env prod --input artifacts/batch-sample.csv",
        f"python -m {PACKAGE} batch --target aws --env prod",
    ]
    pushed = [line.split()[3] for line in _run_phases(repo, "push", tmp_path) if line.startswith(f"python -m {PACKAGE} ")]
    assert pushed == ["train", "evaluate", "gate", "register", "deploy", "smoke"]  # (pipeline: > a file)


def _statements(role: dict) -> list[dict]:
    return [s for p in role["Properties"]["Policies"] for s in _unconditional(p["PolicyDocument"]["Statement"])]


def test_stack_alerts_a_person_and_retrains_without_one(repo: Path) -> None:
    template, errors = decode_str((repo / "infra" / "aws" / "pipeline.yaml").read_text())
    assert not errors
    resources, parameters = template["Resources"], template["Parameters"]
    # alarms reach the AlertEmail (alerts.email): a subscription only when one is given
    assert parameters["AlertEmail"]["Default"] == ""
    assert resources["AlertSubscription"]["Condition"] == "AlertByEmail"
    assert resources["AlertSubscription"]["Properties"]["Endpoint"] == {"Ref": "AlertEmail"}
    alarms = {r["Properties"]["AlarmName"]["Fn::Sub"]: r["Properties"] for r in resources.values()
              if r["Type"] == "AWS::CloudWatch::Alarm"}
    for env in ("staging", "prod"):
        errors_alarm = alarms[f"${{ModelName}}-{env}-alert-5xx"]
        latency = alarms[f"${{ModelName}}-{env}-alert-p99-latency"]
        assert (errors_alarm["MetricName"], latency["MetricName"]) == ("Invocation5XXErrors", "ModelLatency")
        assert latency["ExtendedStatistic"] == "p99"
        assert {"Name": "EndpointName", "Value": {"Fn::Sub": f"${{ModelName}}-{env}"}} in latency["Dimensions"]
        assert errors_alarm["AlarmActions"] == latency["AlarmActions"] == [{"Ref": "AlertTopic"}]
    # CodeBuild hands the topic to deploy, which creates the per-feature drift alarms
    for project in ("BuildProject", "ProdDeployProject"):
        variables = resources[project]["Properties"]["Environment"]["EnvironmentVariables"]
        assert {"Name": "ALERT_TOPIC_ARN", "Value": {"Ref": "AlertTopic"}} in variables

    # one pipeline variable says why a run started; the build gets it as RUN_REASON
    pipeline = resources["Pipeline"]["Properties"]
    assert pipeline["ExecutionMode"] == "SUPERSEDED"  # a burst of triggers makes at most one more run
    assert pipeline["Variables"] == [{"Name": "RUN_REASON", "DefaultValue": "push", "Description": pipeline["Variables"][0]["Description"]}]
    build = pipeline["Stages"][1]["Actions"][0]["Configuration"]
    assert json.loads(build["EnvironmentVariables"]) == [
        {"name": "RUN_REASON", "value": "#{variables.RUN_REASON}", "type": "PLAINTEXT"}]
    starter = resources["RetrainStarter"]["Properties"]
    task = starter["Definition"]["States"]["StartPipeline"]
    assert task["Resource"] == "arn:aws:states:::aws-sdk:codepipeline:startPipelineExecution"
    assert task["Parameters"]["Variables"] == [{"Name": "RUN_REASON", "Value.$": "$.reason"}]
    assert starter["DefinitionSubstitutions"] == {"PipelineName": {"Ref": "Pipeline"}}
    # the three triggers, each naming its reason, through a role that may start the starter and nothing else
    schedule = resources["RetrainOnScheduleRule"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule" and schedule["Condition"] == "RetrainOnSchedule"
    assert schedule["Properties"]["ScheduleExpressionTimezone"] == "UTC"
    targets = {"schedule": schedule["Properties"]["Target"],
               "data": resources["RetrainOnNewDataRule"]["Properties"]["Targets"][0],
               "alarm": resources["RetrainOnDriftRule"]["Properties"]["Targets"][0]}
    for reason, target in targets.items():
        assert json.loads(target["Input"]) == {"reason": reason}
        assert target["Arn"] == {"Ref": "RetrainStarter"}
        assert target["RoleArn"] == {"Fn::GetAtt": ["RetrainTriggerRole", "Arn"]}
    data = resources["RetrainOnNewDataRule"]
    assert data["Condition"] == "RetrainOnNewData"
    assert data["Properties"]["EventPattern"]["detail-type"] == ["Object Created"]
    assert data["Properties"]["EventPattern"]["detail"]["object"]["key"] == [{"prefix": {"Ref": "DataPrefix"}}]
    drift = resources["RetrainOnDriftRule"]["Properties"]["EventPattern"]
    assert drift["detail"]["alarmName"] == [{"prefix": {"Fn::Sub": "${ModelName}-prod-drift-"}}]
    assert drift["detail"]["state"] == {"value": ["ALARM"]}
    # the scheduled batch: the same starter with reason batch, only when BatchSchedule is set; a batch run
    # skips the approval and production stages (it trained and registered nothing)
    batch = resources["BatchOnScheduleRule"]
    assert batch["Condition"] == "BatchOnSchedule" and parameters["BatchSchedule"]["Default"] == ""
    assert batch["Properties"]["ScheduleExpression"] == {"Ref": "BatchSchedule"}
    assert json.loads(batch["Properties"]["Target"]["Input"]) == {"reason": "batch"}
    assert batch["Properties"]["Target"]["Arn"] == {"Ref": "RetrainStarter"}
    for stage in pipeline["Stages"][2:]:
        [condition] = stage["BeforeEntry"]["Conditions"]
        [rule] = condition["Rules"]
        assert condition["Result"] == "SKIP" and rule["RuleTypeId"]["Provider"] == "VariableCheck"
        assert rule["Configuration"] == {"Variable": "#{variables.RUN_REASON}", "Operator": "NE", "Value": "batch"}
    assert "BeforeEntry" not in pipeline["Stages"][1]
    build_role = _statements(resources["CodeBuildRole"])
    [project] = [s for s in build_role if s.get("Sid") == "ProjectResources"]
    assert {"sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
            "sagemaker:DeleteModel"} <= set(project["Action"])
    assert any("transform-job/${ModelName}-*" in r["Fn::Sub"] for r in project["Resource"])
    assert {s["Sid"] for s in build_role} >= {"BatchInput", "BatchOutput"}
    [trigger] = _statements(resources["RetrainTriggerRole"])
    assert (trigger["Action"], trigger["Resource"]) == ("states:StartExecution", {"Ref": "RetrainStarter"})
    [start] = _statements(resources["RetrainStarterRole"])
    assert start["Action"] == "codepipeline:StartPipelineExecution" and "${Pipeline}" in start["Resource"]["Fn::Sub"]


def test_stack_schedule_default_is_mlops_yaml_default_in_aws_cron(repo: Path) -> None:
    """The stack's RetrainSchedule default is monitoring.retrain_schedule of the rendered mlops.yaml,
    converted by the generated package's own converter (the helper that fills it on deploy)."""
    template, _ = decode_str((repo / "infra" / "aws" / "pipeline.yaml").read_text())
    cron = yaml.safe_load((repo / "mlops.yaml").read_text())["monitoring"]["retrain_schedule"]
    run = subprocess.run([sys.executable, "-c", f"from {PACKAGE}.targets.aws.schedule import aws_cron; print(aws_cron({cron!r}))"],
                         env={"PYTHONPATH": str(repo / "src"), "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, check=True)
    assert template["Parameters"]["RetrainSchedule"]["Default"] == run.stdout.strip() == "cron(0 3 ? * MON *)"


# -- serving: image (#21) -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_repo(rendered) -> Path:
    return rendered(clouds=["aws"], serving="image")


def test_image_buildspec_builds_the_image_after_the_tests_on_aws_commits_only(image_repo: Path, repo: Path) -> None:
    spec = _buildspec(image_repo, "buildspec.yml")
    pre_build = spec["phases"]["pre_build"]["commands"]
    assert _stage_sequence(pre_build) == ["ruff", "validate", "pytest", "export-image?", "publish-image?"]
    for command in pre_build[-2:]:
        assert command.splitlines()[0] == ('if [ "${DEPLOY_TARGET}" = "aws" ] && [ "${PULL_REQUEST:-0}" != "1" ] '
                                           '&& [ "${RUN_REASON:-push}" != "batch" ]; then')
    # everything else is the prebuilt render's, and prod deploys what its version recorded: no image step there
    prebuilt = _buildspec(repo, "buildspec.yml")
    assert {k: v for k, v in spec["phases"].items() if k != "pre_build"} == {
        k: v for k, v in prebuilt["phases"].items() if k != "pre_build"}
    assert pre_build[:-2] == prebuilt["phases"]["pre_build"]["commands"]
    assert "MODEL_IMAGE" not in (image_repo / "buildspec-prod.yml").read_text()


def test_image_stack_has_a_scanned_immutable_repository_and_pushes_from_the_build_only(image_repo: Path) -> None:
    template, errors = decode_str((image_repo / "infra" / "aws" / "pipeline.yaml").read_text())
    assert not errors
    resources = template["Resources"]
    repository = resources["ModelImageRepository"]["Properties"]
    assert repository["ImageTagMutability"] == "IMMUTABLE"
    assert repository["ImageScanningConfiguration"] == {"ScanOnPush": True}
    lifecycle = json.loads(repository["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
                           .replace("${ImageRetentionCount}", "200"))
    assert [r["selection"]["tagStatus"] for r in lifecycle["rules"]] == ["untagged", "any"]
    assert lifecycle["rules"][1]["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 200}
    build = resources["BuildProject"]["Properties"]["Environment"]
    assert build["PrivilegedMode"] is True
    assert "PrivilegedMode" not in resources["ProdDeployProject"]["Properties"]["Environment"]
    assert "PrivilegedMode" not in resources["PullRequestProject"]["Properties"]["Environment"]
    assert {"Name": "MODEL_IMAGE_REPOSITORY", "Value": {"Fn::GetAtt": ["ModelImageRepository", "RepositoryUri"]}} \
        in build["EnvironmentVariables"]
    push = [s for s in _statements(resources["CodeBuildRole"]) if s.get("Sid") == "PushThisRepositorysImage"]
    assert push and push[0]["Resource"] == {"Fn::GetAtt": ["ModelImageRepository", "Arn"]}
    assert {"ecr:PutImage", "ecr:DescribeImageScanFindings"} <= set(push[0]["Action"])
    pull = [s for s in _statements(resources["SageMakerExecutionRole"]) if s.get("Sid") == "PullThisRepositorysImage"]
    assert pull and "ecr:PutImage" not in pull[0]["Action"]
    assert not [s for s in _statements(resources["PullRequestRole"]) if "ecr" in json.dumps(s)]
    assert template["Outputs"]["ModelImageRepositoryUri"]


def test_image_render_passes_validate_and_cfn_lint(image_repo: Path) -> None:
    run = subprocess.run([str(BIN / "mlops-gen"), "validate", "--strict", str(image_repo)], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    run = subprocess.run([str(BIN / "cfn-lint"), "--regions", "us-east-1", "eu-west-2", "--",
                          str(image_repo / "infra" / "aws" / "pipeline.yaml")], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_prebuilt_render_has_no_image_resources(repo: Path) -> None:
    text = (repo / "infra" / "aws" / "pipeline.yaml").read_text() + (repo / "buildspec.yml").read_text()
    assert "ECR::Repository" not in text and "PrivilegedMode" not in text and "MODEL_IMAGE" not in text


# -- isolation: multi (#23) ---------------------------------------------------------------------------------
@pytest.mark.parametrize("serving", ["prebuilt", "image"])
def test_multi_templates_pass_cfn_lint(rendered, serving: str) -> None:
    repo = rendered(clouds=["aws"], serving=serving, **MULTI)
    templates = [repo / "infra" / "aws" / "pipeline.yaml", repo / "infra" / "aws" / "target-account.yaml"]
    run = subprocess.run([str(BIN / "cfn-lint"), "--regions", "us-east-1", "eu-west-2", "--", *map(str, templates)],
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr


def test_single_render_has_no_target_account_template(repo: Path) -> None:
    assert sorted(p.name for p in (repo / "infra" / "aws").iterdir()) == ["pipeline.yaml"]
    assert not (repo / "tests" / "test_aws_accounts.py").read_text().count("IAMPolicy")


def test_multi_stack_shares_with_exactly_the_two_accounts(rendered) -> None:
    repo = rendered(clouds=["aws"], serving="image", **MULTI)
    template, errors = decode_str((repo / "infra" / "aws" / "pipeline.yaml").read_text())
    assert not errors
    resources = template["Resources"]
    roots = {f"arn:aws:iam::{a}:root" for a in (STAGING_ACCOUNT, PROD_ACCOUNT)}
    key = resources["ArtifactKey"]["Properties"]
    assert key["EnableKeyRotation"] is True
    shared = [s for s in key["KeyPolicy"]["Statement"] if s["Sid"] != "ThisAccountAdministersThroughIam"]
    assert [set(s["Principal"]["AWS"]) for s in shared] == [roots]
    assert set(shared[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"}
    encryption = resources["ArtifactBucket"]["Properties"]["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]
    assert encryption["ServerSideEncryptionByDefault"]["KMSMasterKeyID"] == {"Fn::GetAtt": ["ArtifactKey", "Arn"]}
    group = resources["ModelPackageGroup"]["Properties"]["ModelPackageGroupPolicy"]["Statement"]
    assert all(set(s["Principal"]["AWS"]) == roots for s in group)
    repository = resources["ModelImageRepository"]["Properties"]["RepositoryPolicyText"]["Statement"]
    assert all(set(s["Principal"]["AWS"]) == roots for s in repository)
    assert resources["CodeBuildRole"]["Properties"]["RoleName"] == {"Fn::Sub": "${ModelName}-codebuild"}
    [assume] = [s for s in _statements(resources["CodeBuildRole"]) if s.get("Sid") == "AssumeTheEnvironmentsDeployRoles"]
    assert [r["Fn::Sub"] for r in assume["Resource"]] == [
        f"arn:${{AWS::Partition}}:iam::{STAGING_ACCOUNT}:role/${{ModelName}}-deploy-staging",
        f"arn:${{AWS::Partition}}:iam::{PROD_ACCOUNT}:role/${{ModelName}}-deploy-prod"]
    # the approval stays between staging and prod
    stages = [s["Name"] for s in resources["Pipeline"]["Properties"]["Stages"]]
    assert stages == ["Source", "TrainTestStaging", "ApproveProduction", "Production"]
    target, errors = decode_str((repo / "infra" / "aws" / "target-account.yaml").read_text())
    assert not errors
    assert {r["Type"] for r in target["Resources"].values()} == {"AWS::IAM::Role"}
    assert "AWS::IAM::AccessKey" not in json.dumps(target) and "AWS::IAM::User" not in json.dumps(target)


@pytest.mark.slow
def test_generated_aws_image_and_multi_suites_pass_offline(rendered, tmp_path: Path) -> None:
    repo = Path(shutil.copytree(rendered(clouds=["aws"], serving="image", **MULTI), tmp_path / "repo"))
    python = project_python(repo, ["local", "dev", "aws"], label="aws")
    run = run_generated_tests(repo, python, "-p", "no:logging", "tests/test_aws_image.py", "tests/test_aws_accounts.py",
                              "tests/test_aws.py")
    tail = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    assert re.search(r"\b\d+ passed\b", run.stdout) and "skipped" not in run.stdout, tail
