"""Google Cloud: the rendered cloudbuild.yaml, cloudbuild.prod.yaml and Cloud Build triggers parse
strictly into Google's own message types (google-cloud-build's Build and BuildTrigger), pass
check-jsonschema's vendored Cloud Build schema and `mlops-gen validate`, follow the substitution and
thin-sequencer rules; infra/gcp/setup.sh runs against a fake gcloud; and the generated repo's own
offline Vertex AI tests (KFP compile, recording fake API) pass in a cached venv."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from google.cloud.devtools.cloudbuild_v1 import Build, BuildTrigger
from google.protobuf import json_format

from tests.helpers import render

BIN = Path(sys.executable).parent
BUILD_FILES = ("cloudbuild.yaml", "cloudbuild.prod.yaml")
TRIGGERS = ("pull-request", "staging", "prod", "retrain-schedule", "retrain-data", "retrain-alarm", "batch")
RETRAIN = {"retrain-schedule": "schedule", "retrain-data": "data", "retrain-alarm": "alarm"}
# Substitutions Cloud Build defines itself (https://cloud.google.com/build/docs/configuring-builds/substitute-variable-values)
BUILT_IN = {"PROJECT_ID", "PROJECT_NUMBER", "BUILD_ID", "LOCATION", "TRIGGER_NAME", "COMMIT_SHA", "REVISION_ID",
            "SHORT_SHA", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME", "TAG_NAME", "REF_NAME",
            "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT"}
REFERENCE = re.compile(r"(?<!\$)\$(?:\{([A-Za-z0-9_]+)\}|([A-Za-z_][A-Za-z0-9_]*))")
PINNED_PYTHON = re.compile(r"^python:3\.1[123]\.\d+-slim(-bookworm)?$")
STAGES = ["train", "evaluate", "gate", "register", "deploy-smoke", "batch"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory, rendered) -> Path:
    return Path(shutil.copytree(rendered(clouds=["gcp"]), tmp_path_factory.mktemp("gcp") / "repo"))


@pytest.fixture(scope="module")
def odd(tmp_path_factory) -> Path:
    """Answers that stress quoting and naming: digits first, quotes, another region and Python."""
    return render(tmp_path_factory.mktemp("gcp-odd") / "repo", clouds=["gcp", "aws"],
                  project_name='2024 "Fraud" Model: v2', package_name="fraud_model", python_version="3.12",
                  gcp_region="europe-west4", gcp_project_id="fraud-prj-42", default_branch="release/2.x",
                  gcp_github_owner="acme-ml", gcp_github_repo="fraud.model")


@pytest.fixture(scope="module")
def image(rendered) -> Path:
    """serving: image, on Python 3.13."""
    return rendered(clouds=["gcp"], serving="image", python_version="3.13")


STAGING_PROJECT, PROD_PROJECT = "acme-stg-1", "acme-prd-1"


@pytest.fixture(scope="module")
def multi(rendered) -> Path:
    """isolation: multi (staging and prod in projects of their own), serving: image."""
    return rendered(clouds=["gcp"], serving="image", isolation="multi", gcp_staging_project_id=STAGING_PROJECT,
                    gcp_prod_project_id=PROD_PROJECT)


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def _strings(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from _strings(value)
    elif isinstance(node, str):
        yield node


def _references(build: dict) -> set[str]:
    found = set()
    for text in _strings({k: v for k, v in build.items() if k != "substitutions"}):
        for braced, bare in REFERENCE.findall(text):
            found.add(braced or bare)
    return found


@pytest.mark.parametrize("name", BUILD_FILES)
@pytest.mark.parametrize("which", ["repo", "odd", "image", "multi"])
def test_build_files_parse_strictly_and_pass_the_vendored_schema(which: str, name: str, request) -> None:
    path = request.getfixturevalue(which) / name
    json_format.ParseDict(_load(path), Build.pb(Build()))  # unknown field or bad enum/duration -> error
    run = subprocess.run([str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.cloudbuild", str(path)],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("which", ["repo", "odd", "multi"])
def test_trigger_files_parse_strictly_into_build_trigger(which: str, request) -> None:
    repo = request.getfixturevalue(which)
    for trigger in TRIGGERS:
        data = _load(repo / "infra" / "gcp" / "triggers" / f"{trigger}.yaml")
        message = json_format.ParseDict(data, BuildTrigger.pb(BuildTrigger()))
        assert re.fullmatch(r"[a-zA-Z][a-zA-Z0-9-]{0,63}", message.name), message.name
        filename = message.filename or message.git_file_source.path
        assert (repo / filename).is_file()
        # a service account of the project the trigger deploys into (isolation: multi), else the builder
        account = re.fullmatch(r"projects/([a-z0-9-]+)/serviceAccounts/(cloudbuild-[a-z]+)@([a-z0-9-]+)\.iam\.gserviceaccount\.com",
                               message.service_account)
        assert account and account[1] == account[3], message.service_account
        if which == "multi" and trigger not in ("pull-request", "batch"):
            env = "prod" if trigger == "prod" else "staging"
            assert account.group(1, 2) == ({"staging": STAGING_PROJECT, "prod": PROD_PROJECT}[env], f"cloudbuild-{env}")
        else:
            assert account[2] == "cloudbuild-runner" and account[1] == _load(repo / "mlops.yaml")["gcp"]["project_id"]
        build = _load(repo / filename)
        assert set(message.substitutions) <= set(build["substitutions"]), trigger


@pytest.mark.parametrize("which", ["repo", "odd"])
def test_retrain_triggers_build_the_default_branch_with_their_reason(which: str, request) -> None:
    """Scheduled (run by Cloud Scheduler), new-data and drift-alarm (Pub/Sub) triggers: BuildTrigger messages
    that build the default branch's cloudbuild.yaml with _RUN_REASON set to their event."""
    repo = request.getfixturevalue(which)
    branch = "release/2.x" if which == "odd" else "main"
    staging = _load(repo / "infra" / "gcp" / "triggers" / "staging.yaml")
    owner, name = staging["github"]["owner"], staging["github"]["name"]
    for trigger, reason in RETRAIN.items():
        message = json_format.ParseDict(_load(repo / "infra" / "gcp" / "triggers" / f"{trigger}.yaml"),
                                        BuildTrigger.pb(BuildTrigger()))
        assert message.substitutions["_RUN_REASON"] == reason
        assert {k: v for k, v in message.substitutions.items() if k != "_RUN_REASON"} == \
            {k: v for k, v in staging["substitutions"].items() if k != "_RUN_REASON"}
        assert message.source_to_build.ref == message.git_file_source.revision == f"refs/heads/{branch}"
        assert message.source_to_build.uri == message.git_file_source.uri == f"https://github.com/{owner}/{name}"
        assert message.git_file_source.path == "cloudbuild.yaml"
        topic = message.pubsub_config.topic
        if reason == "schedule":
            assert not message.HasField("pubsub_config") and not message.HasField("github")
        else:
            suffix = {"data": "-new-data", "alarm": "-drift-alarm"}[reason]
            assert re.fullmatch(rf"projects/[a-z0-9-]+/topics/[a-zA-Z][a-zA-Z0-9-]*{suffix}", topic), topic
    assert staging["substitutions"]["_RUN_REASON"] == "push"
    assert _load(repo / "infra" / "gcp" / "triggers" / "pull-request.yaml")["substitutions"]["_RUN_REASON"] == "pull_request"


@pytest.mark.parametrize("which", ["repo", "odd"])
def test_batch_trigger_scores_with_prod_on_the_default_branch(which: str, request) -> None:
    """The scheduled batch: a manual BuildTrigger (Cloud Scheduler runs it) building the default branch's
    cloudbuild.yaml with _RUN_REASON=batch against prod; otherwise the staging trigger's substitutions."""
    repo = request.getfixturevalue(which)
    triggers = repo / "infra" / "gcp" / "triggers"
    message = json_format.ParseDict(_load(triggers / "batch.yaml"), BuildTrigger.pb(BuildTrigger()))
    assert dict(message.substitutions) == {**_load(triggers / "staging.yaml")["substitutions"],
                                           "_RUN_REASON": "batch", "_ENV": "prod"}
    branch = "release/2.x" if which == "odd" else "main"
    assert message.source_to_build.ref == message.git_file_source.revision == f"refs/heads/{branch}"
    assert message.git_file_source.path == "cloudbuild.yaml"
    assert not message.HasField("pubsub_config") and not message.HasField("github")
    assert message.name.endswith("-batch")


def test_mlops_gen_validate_accepts_the_gcp_files(repo: Path) -> None:
    files = [str(repo / n) for n in BUILD_FILES]
    run = subprocess.run([str(BIN / "mlops-gen"), "validate", "--strict", *files], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


@pytest.mark.parametrize("name", BUILD_FILES)
@pytest.mark.parametrize("which", ["repo", "image"])
def test_substitutions_are_defined_used_and_well_named(which: str, name: str, request) -> None:
    build = _load(request.getfixturevalue(which) / name)
    defined, used = set(build["substitutions"]), _references(build)
    assert all(re.fullmatch(r"_[A-Z0-9_]+", s) for s in defined), defined
    user = {u for u in used if u.startswith("_")}
    assert user == defined, f"used but undefined: {user - defined}; defined but unused: {defined - user}"
    assert used - user <= BUILT_IN, used - user - BUILT_IN
    assert build["substitutions"]["_DEPLOY_TARGET"] == "gcp"
    options = build["options"]
    assert options["substitutionOption"] == "MUST_MATCH" and options["logging"] == "CLOUD_LOGGING_ONLY"
    assert re.fullmatch(r"\d+s", build["timeout"])


@pytest.mark.parametrize("name", BUILD_FILES)
def test_steps_are_thin_pinned_and_fail_loudly(repo: Path, name: str) -> None:
    build = _load(repo / name)
    text = (repo / name).read_text()
    assert "|| true" not in text and "gcr.io" not in text and "kaniko" not in text and "allowFailure" not in text
    ids = [s["id"] for s in build["steps"]]
    assert len(ids) == len(set(ids))
    for index, step in enumerate(build["steps"]):
        assert PINNED_PYTHON.match(step["name"]), step["name"]
        assert set(step["waitFor"]) <= set(ids[:index]) | {"-"}, step["id"]
        if step["entrypoint"] == "bash":
            script = step["args"][-1]
            assert script.startswith("set -euo pipefail\n"), step["id"]
            commands = script.splitlines()[1:]
            if step["id"] == "install":
                assert '".[${_DEPLOY_TARGET}' in script and "python -m venv .venv" in script
            else:  # stages on the one switch, guarded by the pull-request switch or the run reason, or rolled back
                stages = [c.split()[c.split().index("-m") + 2] for c in commands if "my_ml_project" in c]
                assert stages in (["register"], ["deploy", "smoke"], ["deploy", "smoke", "rollback"],
                                  ["train", "train"], ["evaluate"], ["gate"], ["sample", "monitor", "batch"]), stages
                # every stage on the one switch (the batch input's sampler is a helper module, not a stage)
                assert all('--target "${_DEPLOY_TARGET}"' in c for c in commands if " my_ml_project " in c)
                assert all(c.strip().startswith(("if ", "elif ", "fi", "else", "echo ", "exit 1", ".venv/bin/python",
                                                  "--record", "--release", "--input")) for c in commands), commands
        elif step["id"] == "validate":  # the validator, in an environment of its own
            assert step["entrypoint"] == ".venv/bin/uvx" and step["args"][:2] == ["--from", "mlops-gen==0.1.0"]
        else:  # every other step is the workspace venv's Python running a module
            assert step["entrypoint"] == ".venv/bin/python" and step["args"][0] == "-m", step["id"]
    for step in build["steps"]:
        if step["args"][1:2] == ["my_ml_project"]:
            assert step["args"][2] == step["id"]
            assert step["args"][3:5] == ["--target", "${_DEPLOY_TARGET}"]


def test_staging_build_order_and_parallel_checks(repo: Path) -> None:
    build = _load(repo / "cloudbuild.yaml")
    steps = {s["id"]: s for s in build["steps"]}
    assert steps["lint"]["waitFor"] == steps["validate"]["waitFor"] == steps["unit-tests"]["waitFor"] == ["install"]
    assert steps["lint"]["args"][:3] == ["-m", "ruff", "check"]
    assert steps["unit-tests"]["args"][:2] == ["-m", "pytest"]
    assert sorted(steps["train"]["waitFor"]) == ["lint", "retrain-guard", "unit-tests", "validate"]
    assert steps["retrain-guard"]["waitFor"] == ["install"]
    # a schedule, new data or a drift alarm trains only new data; a push or pull request always trains
    train = steps["train"]["args"][-1].splitlines()
    retrain = next(i for i, line in enumerate(train) if '"${_RUN_REASON}" = "schedule"' in line)
    assert all(f'"${{_RUN_REASON}}" = "{r}"' in train[retrain] for r in ("schedule", "data", "alarm"))
    assert train[retrain + 1].rstrip().endswith("--if-new-data") and train[retrain + 2].strip() == "else"
    assert "--if-new-data" not in train[retrain + 3]
    assert build["substitutions"]["_RUN_REASON"] == "push"
    assert steps["validate"]["entrypoint"] == ".venv/bin/uvx"
    assert steps["validate"]["args"] == ["--from", "mlops-gen==0.1.0", "mlops-gen", "validate", "--strict", "."]
    for before, after in itertools.pairwise(STAGES):
        assert steps[after]["waitFor"] == [before]
    assert [s["id"] for s in build["steps"]][-len(STAGES):] == STAGES
    # the test step runs the offline tests of every cloud, so it installs their extras too
    assert '".[${_DEPLOY_TARGET},dev,gcp]"' in steps["install"]["args"][-1]
    assert "COMMIT_SHA=${COMMIT_SHA}" in build["options"]["env"]
    # a pull request stops after the gate; main records the smoke-tested version per commit
    for step in ("register", "deploy-smoke"):
        assert 'if [ "${_PULL_REQUEST}"' in steps[step]["args"][-1]
    # a batch run (infra/gcp/triggers/batch.yaml) trains and deploys nothing; only it runs the batch step
    assert train[retrain - 2].strip() == 'if [ "${_RUN_REASON}" = "batch" ]; then'
    for step in ("evaluate", "gate", "register", "deploy-smoke"):
        assert '"${_RUN_REASON}" != "batch"' in steps[step]["args"][-1], step
    batch = steps["batch"]["args"][-1].splitlines()
    assert batch[1] == 'if [ "${_RUN_REASON}" = "batch" ]; then'
    monitor, score = batch.index(next(c for c in batch if " monitor " in c)), batch.index(next(c for c in batch if " batch " in c))
    assert "artifacts/batch/input-sample.csv" in batch[monitor + 1] and monitor < score  # drift fails before scoring
    assert build["substitutions"]["_PULL_REQUEST"] == "false"
    assert '--record "${_RELEASES}/${COMMIT_SHA}.json"' in steps["deploy-smoke"]["args"][-1]
    assert "artifacts" not in build  # nothing is written to Google Cloud but by the stages themselves


def test_prod_build_promotes_deploys_and_smokes_without_training(repo: Path) -> None:
    build = _load(repo / "cloudbuild.prod.yaml")
    assert [s["id"] for s in build["steps"]] == ["install", "promote", "deploy-smoke"]
    assert build["substitutions"]["_ENV"] == "prod"
    promote = build["steps"][1]["args"]
    assert promote[promote.index("--to") + 1] == "${_ENV}"
    # exactly the version the staging smoke test of this commit recorded, not "what staging runs now"
    record = "${_RELEASES}/${COMMIT_SHA}.json"
    assert promote[promote.index("--release") + 1] == record
    assert f'--release "{record}"' in build["steps"][2]["args"][-1]
    staging = _load(repo / "cloudbuild.yaml")["substitutions"]["_RELEASES"]
    assert build["substitutions"]["_RELEASES"] == staging
    assert "rollback" in build["steps"][2]["args"][-1]


def test_triggers_wire_commits_tags_and_pull_requests(repo: Path, odd: Path) -> None:
    triggers = {t: _load(repo / "infra" / "gcp" / "triggers" / f"{t}.yaml") for t in TRIGGERS}
    assert triggers["staging"]["github"]["push"]["branch"] == "^main$"
    assert triggers["staging"]["filename"] == "cloudbuild.yaml"
    assert triggers["prod"]["approvalConfig"] == {"approvalRequired": True}
    assert triggers["prod"]["filename"] == "cloudbuild.prod.yaml"
    assert re.fullmatch(triggers["prod"]["github"]["push"]["tag"], "v1.2.3")
    assert triggers["pull-request"]["substitutions"]["_DEPLOY_TARGET"] == "local"
    assert triggers["pull-request"]["substitutions"]["_PULL_REQUEST"] == "true"
    assert triggers["staging"]["substitutions"]["_PULL_REQUEST"] == "false"
    assert "approvalConfig" not in triggers["staging"]
    staging = _load(odd / "infra" / "gcp" / "triggers" / "staging.yaml")
    assert re.fullmatch(staging["github"]["push"]["branch"], "release/2.x")
    assert not re.fullmatch(staging["github"]["push"]["branch"], "releaseX2.x")
    assert staging["name"].startswith("t-2024-fraud-model")
    assert (staging["github"]["owner"], staging["github"]["name"]) == ("acme-ml", "fraud.model")


def test_config_and_serving_image_follow_the_answers(odd: Path) -> None:
    gcp = _load(odd / "mlops.yaml")["gcp"]
    assert gcp["serving_image"] == "europe-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest"
    assert gcp["component_image"] == "python:3.12-slim"
    assert gcp["service_account"] == "vertex-runner@fraud-prj-42.iam.gserviceaccount.com"
    assert _load(odd / "cloudbuild.yaml")["steps"][0]["name"].startswith("python:3.12.")


def _fake_cli(folder: Path, log: Path, numbers: dict[str, str] | None = None) -> dict:
    """gcloud and bq that log their arguments: `describe`/`show` say "not found" (so every resource is
    created) except the project's number (`numbers` per project, else 123456789012) and a trigger's id,
    which later commands need; lists are empty."""
    folder.mkdir(exist_ok=True)
    gcloud = folder / "gcloud"
    known = "".join(f'  *" projects describe {p} "*) echo {n} ;;\n' for p, n in (numbers or {}).items())
    gcloud.write_text(f"""#!/usr/bin/env bash
echo "gcloud $*" >> {log}
case " $* " in
{known}  *" projects describe "*) echo 123456789012 ;;
  *" builds triggers describe "*) echo 0f1e2d3c-trigger-id ;;
  *" describe "*) exit 1 ;;
  *" channels create "*) echo "projects/p/notificationChannels/$RANDOM" ;;
esac
exit 0
""")
    bq = folder / "bq"
    bq.write_text(f'#!/usr/bin/env bash\necho "bq $*" >> {log}\n[[ " $* " == *" show "* ]] && exit 1\nexit 0\n')
    for tool in (gcloud, bq):
        tool.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}", "PYTHON": sys.executable}


def _set_mlops(repo: Path, **values) -> None:
    config = _load(repo / "mlops.yaml")
    for dotted, value in values.items():
        node = config
        *parents, last = dotted.split("__")
        for key in parents:
            node = node[key]
        node[last] = value
    (repo / "mlops.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


def test_setup_script_against_a_fake_gcloud(repo: Path, tmp_path: Path) -> None:
    script = repo / "infra" / "gcp" / "setup.sh"
    for name in ("setup.sh", "operate.sh"):
        assert subprocess.run(["bash", "-n", str(repo / "infra" / "gcp" / name)]).returncode == 0
    log = tmp_path / "calls.log"
    env = _fake_cli(tmp_path / "bin", log)
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    calls = [c.removeprefix("gcloud ") for c in log.read_text().splitlines()]
    assert any(c.startswith("storage buckets create gs://my-ml-project-ml-mlops") for c in calls)
    assert sum(c.startswith("iam service-accounts create") for c in calls) == 3  # builder, runtime, retrain invoker
    imported = [c for c in calls if c.startswith("builds triggers import")]
    assert len(imported) == 7 and all(os.path.isfile(c.split("--source ")[1]) for c in imported)
    roles = " ".join(c for c in calls if "add-iam-policy-binding" in c)
    assert "roles/owner" not in roles and "roles/editor" not in roles
    assert "roles/iam.serviceAccountUser" in roles
    assert not any("keys create" in c for c in calls)  # keyless
    # topics exist before the Pub/Sub triggers are imported
    topics = [i for i, c in enumerate(calls) if c.startswith("pubsub topics create")]
    assert len(topics) == 2 and max(topics) < calls.index(imported[0])
    # operate: the capture dataset, alert policies from the files, the schedule, no e-mail channel (none set)
    assert any(c.startswith("bq ") and " mk --dataset " in c and c.endswith(":mlops_capture") for c in calls)
    created = [c for c in calls if c.startswith("alpha monitoring policies create")]
    files = sorted(c.split("--policy-from-file ")[1].split()[0] for c in created)
    assert files == sorted(str(p) for p in (repo / "infra" / "gcp" / "alerts").glob("*.yaml"))
    drift = next(c for c in created if c.split("--policy-from-file ")[1].startswith(str(repo / "infra/gcp/alerts/drift")))
    assert "--notification-channels projects/p/notificationChannels/" in drift
    assert not any("type email" in c for c in calls) and "alerts.email is empty" in run.stdout
    schedule = next(c for c in calls if c.startswith("scheduler jobs create http"))
    assert "--schedule 0 3 * * 1 --time-zone Etc/UTC" in schedule
    assert "/locations/global/triggers/0f1e2d3c-trigger-id:run" in schedule
    assert "--oauth-service-account-email retrain-invoker@" in schedule
    assert not any("scheduler jobs create http my-ml-project-batch" in c for c in calls)  # batch.schedule: null
    assert "not on Cloud Storage" in run.stdout  # the default data is not in a bucket: no notification
    failing = tmp_path / "bin" / "gcloud"
    failing.write_text("#!/usr/bin/env bash\nexit 3\n")
    assert subprocess.run(["bash", str(script)], env=env, capture_output=True).returncode != 0


def test_operate_reads_alert_email_schedule_and_data_from_mlops_yaml(repo: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(repo, tmp_path / "repo"))
    _set_mlops(copy, alerts__email="ml-team@example.com", monitoring__retrain_schedule=None,
               data__source="gs://acme-data/fraud/transactions-*.csv", batch__schedule="30 2 * * *")
    log = tmp_path / "calls.log"
    env = _fake_cli(tmp_path / "bin", log)
    env.update(PROJECT_ID="p-1", REGION="europe-west4", BUCKET="b-1", PREFIX="fraud", BUILDER="x@p-1.iam.gserviceaccount.com")
    run = subprocess.run(["bash", str(copy / "infra" / "gcp" / "operate.sh")], env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    calls = [c.removeprefix("gcloud ") for c in log.read_text().splitlines()]
    email = next(c for c in calls if c.startswith("beta monitoring channels create --project p-1 --type email"))
    assert "--channel-labels email_address=ml-team@example.com" in email
    for created in (c for c in calls if c.startswith("alpha monitoring policies create")):
        assert "--notification-channels projects/p/notificationChannels/" in created
    created = [c for c in calls if c.startswith("scheduler jobs create")]  # retrain_schedule: null; the batch's
    assert len(created) == 1 and created[0].startswith("scheduler jobs create http fraud-batch ")
    assert "--schedule 30 2 * * * --time-zone Etc/UTC" in created[0]
    assert "builds triggers describe fraud-batch --project p-1 --format value(id)" in calls
    notification = next(c for c in calls if c.startswith("storage buckets notifications create gs://acme-data"))
    assert "--topic projects/p-1/topics/fraud-new-data --event-types OBJECT_FINALIZE" in notification
    assert notification.endswith("--object-prefix fraud/transactions-")


def test_image_mode_builds_pushes_and_hands_the_image_on(image: Path) -> None:
    """serving: image: the docker builder step, as Cloud Build's Build message reads it; MODEL_IMAGE on every
    step that registers or deploys; the scan gate before training; Python 3.13 images."""
    build = Build.pb(Build())
    json_format.ParseDict(_load(image / "cloudbuild.yaml"), build)
    steps = {s.id: s for s in build.steps}
    assert steps["image"].name == "gcr.io/cloud-builders/docker:24.0.9" and steps["image"].entrypoint == "bash"
    model_image = "MODEL_IMAGE=${_REGION}-docker.pkg.dev/${PROJECT_ID}/mlops/my-ml-project:${COMMIT_SHA}"
    for step in ("image", "train", "register", "deploy-smoke"):
        assert list(steps[step].env) == [model_image], step
    script = steps["image"].args[-1]
    assert "docker build --target mounted --build-arg EXTRAS=gcp" in script and 'docker push "$$MODEL_IMAGE"' in script
    assert list(steps["image-scan"].wait_for) == ["install", "image"] and "image-scan" in steps["train"].wait_for
    assert steps["image-scan"].args[:2] == ["-m", "my_ml_project.targets.gcp.image_scan"]
    assert build.substitutions["_REGION"] == "us-central1"
    assert not build.images  # pushed by the step only where a version is registered (see the step's comment)
    python = {s.name for s in build.steps if s.id != "image"}
    assert python == {"python:3.13.7-slim-bookworm"}
    assert _load(image / "cloudbuild.prod.yaml")["steps"][0]["name"] == "python:3.13.7-slim-bookworm"


def test_ci_run_runs_a_docker_builder_step_with_this_machines_tools(tmp_path: Path) -> None:
    """`mlops-gen ci run` takes Google's docker builder (the image step's) as the host's docker: a step that
    does not call docker (the image step with _DEPLOY_TARGET=local) passes, and one that calls it runs it."""
    from click.testing import CliRunner

    from mlops_gen.localci.command import ci

    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "cloudbuild.yaml").write_text(
        "steps:\n"
        "  - {id: guarded, name: 'gcr.io/cloud-builders/docker:24.0.9', entrypoint: bash, args: [-c, 'echo no docker needed']}\n"
        "  - {id: docker, name: 'gcr.io/cloud-builders/docker:24.0.9', args: [--version]}\n")
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-q",
                    "--allow-empty", "-m", "x"], check=True)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "docker").write_text("#!/usr/bin/env bash\necho host docker \"$*\"\n")
    (tmp_path / "bin" / "docker").chmod(0o755)
    out = CliRunner().invoke(ci, ["run", "--provider", "gcp", "--repo", str(repo), "--no-venv"],
                             env={"PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"})
    assert out.exit_code == 0, out.output
    report = json.loads((repo / ".local-ci" / "gcp" / "report.json").read_text())
    assert [s["status"] for s in report["steps"]] == ["passed", "passed"]
    assert "host docker --version" in Path(report["steps"][1]["log"]).read_text()


def _bindings(calls: list[str]) -> set[tuple[str, str, str]]:
    """(where, member, role) of every IAM binding a setup script made."""
    found = set()
    for call in calls:
        if "add-iam-policy-binding" not in call:
            continue
        words = call.split()
        where = " ".join(words[:words.index("add-iam-policy-binding") + 2])
        if "--condition" in words and words[words.index("--condition") + 1] != "None":
            where += " if " + words[words.index("--condition") + 1].split(",")[0]
        found.add((where, words[words.index("--member") + 1], words[words.index("--role") + 1]))
    return found


def _setup_calls(repo: Path, tmp_path: Path, numbers: dict[str, str] | None = None) -> list[str]:
    log = tmp_path / "calls.log"
    env = _fake_cli(tmp_path / "bin", log, numbers)
    run = subprocess.run(["bash", str(repo / "infra" / "gcp" / "setup.sh")], env=env, capture_output=True, text=True,
                         cwd=tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    return [c.removeprefix("gcloud ") for c in log.read_text().splitlines()]


def test_setup_creates_the_image_repository_and_scanning(image: Path, tmp_path: Path) -> None:
    calls = _setup_calls(image, tmp_path)
    assert any(c.startswith("services enable") and "containerscanning.googleapis.com" in c
               and "artifactregistry.googleapis.com" in c for c in calls)
    assert any(c.startswith("artifacts repositories create mlops --repository-format docker --location us-central1")
               for c in calls)
    builder = "serviceAccount:cloudbuild-runner@my-ml-project-ml.iam.gserviceaccount.com"
    agent = "serviceAccount:service-123456789012@gcp-sa-aiplatform.iam.gserviceaccount.com"
    bindings = _bindings(calls)
    repo_roles = {(m, r) for w, m, r in bindings if w.startswith("artifacts repositories add-iam-policy-binding mlops")}
    assert repo_roles == {(builder, "roles/artifactregistry.writer"), (agent, "roles/artifactregistry.reader")}
    assert ("projects add-iam-policy-binding my-ml-project-ml", builder,
            "roles/containeranalysis.occurrences.viewer") in bindings


def test_setup_multi_gives_each_environment_an_account_of_its_own_with_least_privilege(multi: Path,
                                                                                      tmp_path: Path) -> None:
    calls = _setup_calls(multi, tmp_path, {STAGING_PROJECT: "222222222222", PROD_PROJECT: "333333333333"})
    for env, project in (("staging", STAGING_PROJECT), ("prod", PROD_PROJECT)):
        assert f"iam service-accounts create cloudbuild-{env} --project {project} --display-name my-ml-project: cloudbuild-{env}" in calls
        assert any(c.startswith(f"iam service-accounts create vertex-runner --project {project}") for c in calls)
    assert not any("keys create" in c for c in calls)  # keyless
    bindings = _bindings(calls)
    assert not {r for _, _, r in bindings} & {"roles/owner", "roles/editor", "roles/aiplatform.admin", "roles/storage.admin"}
    # only Cloud Build's service agent may mint the environments' tokens (to run their triggers)
    minted = {(w.split()[-1], m) for w, m, r in bindings if r == "roles/iam.serviceAccountTokenCreator"}
    agent = "serviceAccount:service-123456789012@gcp-sa-cloudbuild.iam.gserviceaccount.com"
    assert minted == {(f"cloudbuild-{e}@{p}.iam.gserviceaccount.com", agent)
                      for e, p in (("staging", STAGING_PROJECT), ("prod", PROD_PROJECT))}
    dev, bucket = "my-ml-project-ml", "gs://my-ml-project-ml-mlops"
    prod = f"serviceAccount:cloudbuild-prod@{PROD_PROJECT}.iam.gserviceaccount.com"
    assert {(w, r) for w, m, r in bindings if m == prod} == {
        (f"projects add-iam-policy-binding {PROD_PROJECT}", "roles/aiplatform.user"),
        (f"iam service-accounts add-iam-policy-binding vertex-runner@{PROD_PROJECT}.iam.gserviceaccount.com",
         "roles/iam.serviceAccountUser"),
        (f"storage buckets add-iam-policy-binding {bucket}", "roles/storage.objectViewer"),
        (f"storage buckets add-iam-policy-binding {bucket} if title=monitoring-prod", "roles/storage.objectUser"),
        (f"projects add-iam-policy-binding {dev}", "roles/aiplatform.viewer"),
        (f"projects add-iam-policy-binding {dev}", "roles/logging.logWriter"),
    }
    condition = next(c for c in calls if prod in c and "objectUser" in c)  # writes only its monitoring baselines
    assert condition.endswith('expression=resource.name.startsWith("projects/_/buckets/my-ml-project-ml-mlops/'
                              'objects/monitoring/my-ml-project-prod/")')
    # staging's builds also train and register: the builder's roles in the tooling project, nothing in prod's
    staging = f"serviceAccount:cloudbuild-staging@{STAGING_PROJECT}.iam.gserviceaccount.com"
    staging_roles = {(w, r) for w, m, r in bindings if m == staging}
    assert (f"projects add-iam-policy-binding {dev}", "roles/aiplatform.user") in staging_roles
    assert (f"storage buckets add-iam-policy-binding {bucket}", "roles/storage.objectAdmin") in staging_roles
    assert not any(PROD_PROJECT in w for w, _ in staging_roles)
    # each environment's Vertex AI service agent reads the artifacts and pulls the image (the copy is an upload)
    for env, number in (("staging", "222222222222"), ("prod", "333333333333")):
        agent = f"serviceAccount:service-{number}@gcp-sa-aiplatform.iam.gserviceaccount.com"
        assert {(w, r) for w, m, r in bindings if m == agent} == {
            (f"storage buckets add-iam-policy-binding {bucket}", "roles/storage.objectViewer"),
            (f"storage buckets add-iam-policy-binding {bucket} if title=monitoring-{env}", "roles/storage.objectUser"),
            ("artifacts repositories add-iam-policy-binding mlops", "roles/artifactregistry.reader")}
    # Cloud Build of the tooling project runs the triggers as the environments' accounts
    for project in (STAGING_PROJECT, PROD_PROJECT):
        assert f"resource-manager org-policies disable-enforce iam.disableCrossProjectServiceAccountUsage --project {project}" in calls


