"""AWS: the rendered buildspecs (structure, thin-sequencer rules, `mlops-gen validate --strict`), the
CodePipeline stack (cfn-lint, what it must and must not contain), and the generated repo's own
offline AWS tests (moto server, botocore model checks, SageMaker pipeline definition) in a cached venv."""

from __future__ import annotations

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
# The guards a command may carry: the target switch, "the build so far succeeded", "not a pull request".
GUARD = re.compile(r'^if (\[ "\$\{DEPLOY_TARGET\}" = "aws" \]|\[ "\$\{PULL_REQUEST:-0\}" != "1" \]'
                   r'|\[ "\$\{CODEBUILD_BUILD_SUCCEEDING:-0\}" = "1" \] && \[ "\$\{PULL_REQUEST:-0\}" != "1" \]'
                   r'|\[ -f "artifacts/deployed-\$\{ENVIRONMENT\}.json" \] && \[ ! -f "artifacts/smoked-\$\{ENVIRONMENT\}.json" \]);'
                   r' then$')
PR_SWITCH = ('if [ "${CODEBUILD_WEBHOOK_EVENT#PULL_REQUEST}" != "${CODEBUILD_WEBHOOK_EVENT:-}" ]; then\n'
             '  export DEPLOY_TARGET=local PULL_REQUEST=1\nfi\n')
TOOLS = ("python -m pip install ", "python -m ruff check ", "python -m pytest ", "uvx --from ")


@pytest.fixture(scope="module")
def repo(tmp_path_factory, rendered) -> Path:
    return Path(shutil.copytree(rendered(clouds=["aws"]), tmp_path_factory.mktemp("aws") / "repo"))


def _buildspec(repo: Path, name: str) -> dict:
    return yaml.safe_load((repo / name).read_text())


def _stage_sequence(commands: list[str]) -> list[str]:
    """The stages a phase runs, in order; every command must be a stage, a tool, or a guarded stage."""
    stages = []
    for command in commands:
        lines = [line.strip() for line in command.strip().splitlines()]
        if len(lines) == 1 and (m := STAGE.match(lines[0])):
            stages.append(m.group(1))
        elif len(lines) == 1 and lines[0].startswith(TOOLS):
            words = lines[0].split()  # python -m TOOL ... | uvx --from SPEC mlops-gen VERB ...
            stages.append(words[2] if words[0] == "python" else words[4])
        else:  # if <switch>; then <one command> [else echo ...] fi
            assert GUARD.match(lines[0]) and lines[-1] == "fi", command
            body = lines[1:lines.index("else")] if "else" in lines else lines[1:-1]
            assert len(body) == 1, f"one command per guarded block: {command}"
            stage = body[0].split()[3] if body[0].startswith(f"python -m {PACKAGE} ") else body[0]
            stages.append(f"{stage}?")
            if "else" in lines:
                assert all(line.startswith("echo ") for line in lines[lines.index("else") + 1:-1])
    return stages


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
    # pull requests stop after the gate: register, deploy and smoke are guarded by PULL_REQUEST
    assert _stage_sequence(phases["build"]["commands"]) == ["train", "evaluate", "gate", "register?", "pipeline?"]
    assert "--print-definition > artifacts/sagemaker-pipeline.json" in phases["build"]["commands"][-1]
    assert _stage_sequence(phases["post_build"]["commands"]) == ["deploy?", "smoke?"]
    assert all("CODEBUILD_BUILD_SUCCEEDING" in c and "PULL_REQUEST" in c for c in phases["post_build"]["commands"])
    assert spec["reports"]["unit-tests"]["file-format"] == "JUNITXML"
    assert "--junitxml=reports/junit.xml" in phases["pre_build"]["commands"][-1]
    assert spec["cache"]["paths"] == [spec["env"]["variables"]["PIP_CACHE_DIR"] + "/**/*"]
    assert spec["artifacts"]["files"] == ["**/*"]
    text = (repo / "buildspec.yml").read_text()
    assert "|| true" not in text and "on-failure" not in text and "| " not in text.replace("- |", "")


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
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert not [a for a in actions if a == "*" or a.endswith(":*")], (name, actions)
                if "iam:PassRole" in actions:
                    assert statement["Condition"]["StringEquals"]["iam:PassedToService"] == "sagemaker.amazonaws.com"
    assert "aws cloudformation deploy" in text  # the one documented command


def test_render_without_aws_has_no_aws_files(tmp_path: Path) -> None:
    repo = render(tmp_path / "repo", clouds=["gcp"])
    assert not (repo / "buildspec.yml").exists() and not (repo / "buildspec-prod.yml").exists()
    assert not (repo / "infra" / "aws").exists()
    assert not list(repo.rglob("*aws*")) and not list(repo.rglob("sagemaker*"))


@pytest.mark.slow
def test_generated_aws_suite_passes_offline(repo: Path) -> None:
    python = project_python(repo, ["local", "dev", "aws"], label="aws")
    run = run_generated_tests(repo, python, "-p", "no:logging", "-W", "ignore::DeprecationWarning",
                              "tests/test_aws.py")
    tail = run.stdout[-3000:] + run.stderr[-2000:]
    assert run.returncode == 0, tail
    assert re.search(r"\b\d+ passed\b", run.stdout) and "skipped" not in run.stdout, tail
