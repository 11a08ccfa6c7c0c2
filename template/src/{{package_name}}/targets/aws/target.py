"""The AWS target: SageMaker training jobs, the SageMaker Model Registry and real-time endpoints.

- train:    a training job in the prebuilt scikit-learn container (container.py);
            its model.tar.gz is unpacked into artifacts/model for evaluate and the gate
- register: a version in the model package group `model.name`, with the metrics as model quality
            statistics (S3) and as customer metadata, approved or PendingManualApproval
- deploy:   model -> endpoint config (data capture) -> endpoint, created, or updated blue/green
            with a canary that CloudWatch alarms roll back, then a target-tracking autoscaling policy;
            an environment that needs approval only ever gets an Approved version, never a Rejected one
- invoke:   sagemaker-runtime InvokeEndpoint with {"instances": [...]}
- monitor:  data capture at monitoring.capture_percent, and SageMaker Model Monitor schedules with
            drift alarms per feature, set up after each deploy (monitor.py)
- batch:    a Batch Transform job on a package version, S3 to S3, rows checked first (batch.py)

Every call goes through boto3, so AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_<SERVICE>) points the
target at an emulator. Nothing is created before mlops.yaml has been checked.
"""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, WaiterError

from ...errors import ConfigError, StageFailed
from ..base import Deployment, ModelVersion, MonitorResult, Target
from . import sagemaker as sm

VARIANT = "AllTraffic"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
TAG_VERSION, TAG_PACKAGE, TAG_HISTORY = "mlops:version", "mlops:model-package-arn", "mlops:history"
HISTORY_LENGTH = 20
# isolation: multi. What an environment in an account of its own is reached through (infra/aws/target-account.yaml):
# the services of its endpoints, assumed with its deploy role; S3 (the tooling artifact bucket) and the model
# registry stay in the tooling account, whose CodeBuild role runs every stage.
ENV_SERVICES = ("sagemaker", "sagemaker-runtime", "cloudwatch", "application-autoscaling")
ASSUMED_SECONDS = 3600
_NAME_MAX = 63  # endpoint, endpoint config, model and job names: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}
_LOADER: list = []  # botocore's data loader, shared by every session of this process (see session())


def session(core: botocore.session.Session | None = None, **kwargs) -> boto3.session.Session:
    """A boto3 session whose service models come from this process's one loader: botocore parses a
    service's JSON model (SageMaker's is 2 MB, ~0.15 s) once per loader, and each new session brings a
    new loader, so every client of a new session paid that again (the stages of one `pipeline` run, a
    session per environment account, the test suite's hundreds)."""
    core = core or botocore.session.get_session()
    if _LOADER:
        core.register_component("data_loader", _LOADER[0])
    else:
        _LOADER.append(core.get_component("data_loader"))
    made = boto3.session.Session(botocore_session=core, **kwargs)
    paths = _LOADER[0].search_paths  # boto3 appends its data folder once per session: keep it once
    paths[:] = list(dict.fromkeys(paths))
    return made


def resource_name(*parts: str) -> str:
    """A SageMaker resource name from parts, shortening the first (the model name) to fit."""
    tail = "-".join(p for p in parts[1:] if p)
    head = parts[0][: max(1, _NAME_MAX - len(tail) - 1)] if tail else parts[0][:_NAME_MAX]
    name = re.sub(r"[^a-zA-Z0-9-]+", "-", f"{head}-{tail}" if tail else head)
    return re.sub(r"-+", "-", name).strip("-")


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S")


def _not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    return error.get("Code") in ("ValidationException", "ResourceNotFound", "ObjectNotFoundException") and (
        "not find" in error.get("Message", "").lower()
        or "not found" in error.get("Message", "").lower()
        or "does not exist" in error.get("Message", "").lower()
    )


class AwsTarget(Target):
    name = "aws"
    # Seconds between polls of long-running operations (training jobs, endpoint updates); an
    # emulator answers at once, so tests set MLOPS_AWS_POLL_SECONDS=0.
    poll_seconds = float(os.environ.get("MLOPS_AWS_POLL_SECONDS", "30"))

    def __init__(self, config, root: Path):
        super().__init__(config, root)
        self.aws = config.aws
        unknown = [env for env in self.aws.endpoints if env not in config.environments]
        if unknown:
            raise ConfigError(
                f"mlops.yaml: aws.endpoints.{unknown[0]}: no environment '{unknown[0]}' under environments "
                f"(defined: {', '.join(config.environments)})"
            )
        self.session = session(region_name=self.aws.region)
        self._clients: dict = {}
        self._sessions: dict = {}
        self._scope: str | None = None  # the environment whose account endpoint calls go to (multi)

    def client(self, service: str, *, tooling: bool = False):
        """A client in the tooling account, or for ENV_SERVICES inside `scoped(env)` of an environment with
        an account of its own (isolation: multi), in that account through its deploy role."""
        env = None if tooling or service not in ENV_SERVICES else self._scope
        if (service, env) not in self._clients:
            retries = BotoConfig(
                retries={"mode": "standard", "max_attempts": 8}, user_agent_extra="mlops-gen"
            )
            session = self._env_session(env) if env else self.session
            self._clients[(service, env)] = session.client(service, config=retries)
        return self._clients[(service, env)]

    # -- isolation: multi ----------------------------------------------------------------------------------
    def account_of(self, env: str) -> str | None:
        """environments.<env>.aws_account_id: the account the environment's endpoint lives in (None: here)."""
        return self.config.environment(env).aws_account_id

    def _arn(self, account: str, resource: str) -> str:
        return f"arn:{self.session.get_partition_for_region(self.aws.region)}:iam::{account}:{resource}"

    def deploy_role_arn(self, env: str) -> str:
        """The role infra/aws/target-account.yaml creates in env's account for this project's CodeBuild role."""
        return self._arn(self.account_of(env), f"role/{resource_name(self.config.model.name, 'deploy', env)}")

    def _env_session(self, env: str):
        """env's account, through its deploy role: temporary credentials in a session named after the build,
        assumed again before they expire (a canary can outlast them), never a stored key."""
        if env not in self._sessions:
            from botocore.credentials import RefreshableCredentials

            role = self.deploy_role_arn(env)
            session_name = resource_name(self.config.model.name, env, os.environ.get("CODEBUILD_BUILD_NUMBER", "local"))

            def assume() -> dict:
                try:
                    credentials = self.client("sts", tooling=True).assume_role(
                        RoleArn=role, RoleSessionName=session_name[:64], DurationSeconds=ASSUMED_SECONDS,
                    )["Credentials"]
                except ClientError as exc:
                    raise StageFailed(
                        f"{env}: cannot assume {role} (environments.{env}.aws_account_id): "
                        f"{exc.response['Error'].get('Message', exc)}; deploy infra/aws/target-account.yaml in "
                        "that account (README, Set up on AWS)"
                    ) from None
                return {"access_key": credentials["AccessKeyId"], "secret_key": credentials["SecretAccessKey"],
                        "token": credentials["SessionToken"], "expiry_time": credentials["Expiration"].isoformat()}

            core = botocore.session.get_session()
            core._credentials = RefreshableCredentials.create_from_metadata(  # botocore's own refresh
                assume(), refresh_using=assume, method="sts-assume-role")
            self._sessions[env] = session(core, region_name=self.aws.region)
        return self._sessions[env]

    @contextmanager
    def scoped(self, env: str):
        """Endpoint calls of the block go to env's account when it has one of its own (isolation: multi)."""
        previous, self._scope = self._scope, env if self.account_of(env) else None
        try:
            yield
        finally:
            self._scope = previous

    # -- configuration that only a run against AWS needs -------------------------------------------
    def role_arn(self) -> str:
        if self._scope:  # the execution role target-account.yaml creates in the environment's account
            return self._arn(self.account_of(self._scope),
                             f"role/{resource_name(self.config.model.name, 'sagemaker-execution')}")
        role = self.aws.resolved_role_arn()
        if not role:
            raise ConfigError(
                "mlops.yaml: aws.role_arn: empty and SAGEMAKER_ROLE_ARN is not set; use the "
                "SageMakerExecutionRoleArn output of infra/aws/pipeline.yaml"
            )
        return role

    def bucket(self) -> str:
        bucket = self.aws.resolved_bucket()
        if not bucket:
            raise ConfigError(
                "mlops.yaml: aws.bucket: empty and ARTIFACT_BUCKET is not set; use the "
                "ArtifactBucketName output of infra/aws/pipeline.yaml"
            )
        return bucket

    def _key(self, *parts: str) -> str:
        return "/".join([self.aws.prefix.strip("/"), *parts])

    def _upload(self, key: str, body: bytes) -> str:
        # encrypted by the bucket's default encryption (SSE-KMS, infra/aws/pipeline.yaml)
        self.client("s3").put_object(Bucket=self.bucket(), Key=key, Body=body)
        return f"s3://{self.bucket()}/{key}"

    def _commit(self) -> str:
        from ...stages import git_commit

        return git_commit(self.root)

    def _tags(self, **extra: str) -> list[dict]:
        tags = {"mlops:project": self.config.model.name, **extra}
        return [{"Key": k, "Value": v} for k, v in tags.items()]

    def _wait(self, waiter: str, **kwargs) -> None:
        config = {"Delay": self.poll_seconds, "MaxAttempts": int(4 * 3600 / max(self.poll_seconds, 1))}
        self.client("sagemaker").get_waiter(waiter).wait(WaiterConfig=config, **kwargs)

    # -- managed training ---------------------------------------------------------------------------
    def upload_code(self) -> str:
        """Upload the source directory of this commit (tarball for training, files for processing)."""
        files = sm.source_files(self.config)
        commit = self._commit()
        for name, body in files.items():
            self._upload(self._key("code", commit, "source", name), body)
        return self._upload(self._key("code", commit, "sourcedir.tar.gz"), sm.tarball(files))

    def train(self, artifacts: Path) -> bool:
        if not self.aws.training.managed:
            return False
        self.check_framework("train")
        training = self.aws.training
        sourcedir = self.upload_code()
        job = resource_name(self.config.model.name, "train", _stamp())
        sagemaker = self.client("sagemaker")
        sagemaker.create_training_job(
            TrainingJobName=job,
            AlgorithmSpecification={
                "TrainingImage": sm.image_uri(self.config, "training"),
                "TrainingInputMode": "File",
            },
            HyperParameters={
                "sagemaker_program": json.dumps(sm.CONTAINER_SCRIPT),
                "sagemaker_submit_directory": json.dumps(sourcedir),
                "sagemaker_region": json.dumps(self.aws.region),
                "sagemaker_container_log_level": "20",
            },
            RoleArn=self.role_arn(),
            OutputDataConfig={"S3OutputPath": f"s3://{self.bucket()}/{self._key('training')}"},
            ResourceConfig={"InstanceCount": 1, "InstanceType": training.instance_type, "VolumeSizeInGB": 30},
            StoppingCondition={"MaxRuntimeInSeconds": training.max_runtime_seconds},
            Tags=self._tags(**{"mlops:commit": self._commit()}),
        )
        try:
            self._wait("training_job_completed_or_stopped", TrainingJobName=job)
        except WaiterError:
            pass  # the description below says why
        described = sagemaker.describe_training_job(TrainingJobName=job)
        if described["TrainingJobStatus"] != "Completed":
            raise StageFailed(
                f"train: training job {job} ended {described['TrainingJobStatus']}: "
                f"{described.get('FailureReason', 'no reason given')}"
            )
        self._download_model(described["ModelArtifacts"]["S3ModelArtifacts"], artifacts / "model")
        (artifacts / "training_job.json").write_text(
            json.dumps(
                {
                    "name": job,
                    "arn": described.get("TrainingJobArn"),
                    "image": sm.image_uri(self.config, "training"),
                },
                indent=2,
            )
        )
        return True

    def _download_model(self, uri: str, folder: Path) -> None:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        try:
            body = self.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            raise StageFailed(f"cannot read the model at {uri}: {exc}") from None
        if folder.exists():
            for path in sorted(folder.rglob("*"), reverse=True):
                path.unlink() if path.is_file() else path.rmdir()
        folder.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
            archive.extractall(folder, filter="data")

    # -- registry -----------------------------------------------------------------------------------
    @property
    def group(self) -> str:
        return self.config.model.name

    def _ensure_group(self, sagemaker=None, holds: str = "versions registered by CI") -> None:
        """The model package group, created when missing (in the tooling account unless `sagemaker` is
        another account's client)."""
        sagemaker = sagemaker or self.client("sagemaker", tooling=True)
        try:
            sagemaker.describe_model_package_group(ModelPackageGroupName=self.group)
        except ClientError as exc:
            if not _not_found(exc):
                raise
            sagemaker.create_model_package_group(
                ModelPackageGroupName=self.group,
                ModelPackageGroupDescription=f"{self.config.project}: {holds}"[:1024],
                Tags=self._tags(),
            )

    def _inference_specification(self, model_data: str, image: str | None) -> dict:
        if image:  # serving.mode image: this repository's server, the model unpacked into /opt/ml/model
            container = {"Image": image, "ModelDataUrl": model_data}
        else:
            container = {
                "Image": sm.image_uri(self.config, "inference"),
                "ModelDataUrl": model_data,
                "Environment": {**sm.SERVING_ENVIRONMENT, "SAGEMAKER_REGION": self.aws.region},
                "Framework": sm.FRAMEWORK,
                "FrameworkVersion": sm.framework_short_version(self.config),
            }
        return {
            "Containers": [container],
            "SupportedContentTypes": sm.CONTENT_TYPES,
            "SupportedResponseMIMETypes": ["application/json"],
            "SupportedRealtimeInferenceInstanceTypes": sorted(
                {self.aws.endpoint(env).instance_type for env in self.config.environments}
            ),
        }

    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion:
        self.check_framework("register", model_dir)
        image = self.serving_image()  # before anything is written: MODEL_IMAGE missing is exit 2
        self._ensure_group()
        commit = str(lineage.get("git_commit") or self._commit())
        folder = self._key("models", f"{_stamp()}-{commit[:12]}")
        # The prebuilt container also needs its entry point (code/inference.py) beside the bundle.
        files = sm.bundle_files(model_dir) if image else sm.model_files(model_dir)
        model_data = self._upload(f"{folder}/model.tar.gz", sm.tarball(files))
        statistics = self._upload(f"{folder}/metrics.json", json.dumps(metrics, indent=2).encode())
        self._upload(f"{folder}/lineage.json", json.dumps(lineage, indent=2, default=str).encode())
        status = "Approved" if approved else "PendingManualApproval"
        request = {
            "ModelPackageGroupName": self.group,
            "ModelPackageDescription": f"commit {commit}; {self.config.gate.metric}="
            f"{metrics.get(self.config.gate.metric, float('nan')):.4f}",
            "InferenceSpecification": self._inference_specification(model_data, image),
            "ModelApprovalStatus": status,
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": statistics}}
            },
            "CustomerMetadataProperties": sm.metadata_properties(metrics, lineage),
            "MetadataProperties": {"CommitId": commit[:1024]},
            "Tags": self._tags(**{"mlops:commit": commit}),
        }
        if os.environ.get("CODEBUILD_BUILD_ARN"):
            request["MetadataProperties"]["GeneratedBy"] = os.environ["CODEBUILD_BUILD_ARN"][:1024]
        if os.environ.get("CODEBUILD_SOURCE_REPO_URL"):
            request["MetadataProperties"]["Repository"] = os.environ["CODEBUILD_SOURCE_REPO_URL"][:1024]
        arn = self.client("sagemaker", tooling=True).create_model_package(**request)["ModelPackageArn"]
        return self._version_of(arn)

    def _version_of(self, arn: str) -> ModelVersion:
        described = self.client("sagemaker", tooling=True).describe_model_package(ModelPackageName=arn)
        properties = described.get("CustomerMetadataProperties") or {}
        metrics = {
            k.removeprefix("metric."): float(v) for k, v in properties.items() if k.startswith("metric.")
        }
        version = described.get("ModelPackageVersion") or arn.rsplit("/", 1)[-1]
        return ModelVersion(str(version), metrics, described["ModelApprovalStatus"], arn)

    def _packages(self, status: str | None = None) -> list[dict]:
        """Versions of the group, newest first (optionally only those with approval `status`)."""
        sagemaker, found, token = self.client("sagemaker", tooling=True), [], None
        while True:
            request = {
                "ModelPackageGroupName": self.group,
                "SortBy": "CreationTime",
                "SortOrder": "Descending",
                "MaxResults": 100,
            }
            if status:
                request["ModelApprovalStatus"] = status
            if token:
                request["NextToken"] = token
            try:
                page = sagemaker.list_model_packages(**request)
            except ClientError as exc:
                if _not_found(exc):
                    return []
                raise
            found += page.get("ModelPackageSummaryList", [])
            token = page.get("NextToken")
            if not token:
                break
        return sorted(found, key=lambda p: int(p.get("ModelPackageVersion") or 0), reverse=True)

    def _package(self, version: str) -> ModelVersion:
        for summary in self._packages():
            if str(summary.get("ModelPackageVersion")) == str(version):
                return self._version_of(summary["ModelPackageArn"])
        raise StageFailed(f"registry: model package group {self.group} has no version {version}")

    def champion(self) -> ModelVersion | None:
        tags = self._endpoint_tags("prod")
        if tags.get(TAG_PACKAGE):
            return self._version_of(tags[TAG_PACKAGE])
        approved = self._packages("Approved")
        return self._version_of(approved[0]["ModelPackageArn"]) if approved else None

    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        if version is None:
            version = self._endpoint_tags("staging").get(TAG_VERSION)
            if not version:
                raise StageFailed("promote: nothing is deployed to staging; name a version with --version")
        current = self._package(version)
        if current.status == "Rejected":
            raise StageFailed(f"promote: version {version} of {self.group} is Rejected")
        registry = self.client("sagemaker", tooling=True)
        described = registry.describe_model_package(ModelPackageName=current.uri)
        request = {
            "ModelPackageArn": current.uri,
            "ModelApprovalStatus": "Approved",
            "ApprovalDescription": f"promoted to {to_env} by "
            f"{os.environ.get('CODEBUILD_BUILD_ARN', 'mlops')}",
        }
        if described.get("CustomerMetadataProperties"):  # sent again so every API keeps them
            request["CustomerMetadataProperties"] = described["CustomerMetadataProperties"]
        registry.update_model_package(**request)
        promoted = self._version_of(current.uri)
        if not self.account_of(to_env):
            return promoted
        # Across the boundary: where it came from, kept in to_env's own registry too (its account's
        # model package group), so that account can say what it serves and from where.
        source = {"account": current.uri.split(":")[4], "model_package_arn": current.uri, "version": current.version}
        with self.scoped(to_env):
            self._record_promotion(described, source)
        return replace(promoted, source=source)

    def _record_promotion(self, described: dict, source: dict) -> None:
        sagemaker = self.client("sagemaker")
        self._ensure_group(sagemaker, "versions promoted from the tooling account")
        properties = {**(described.get("CustomerMetadataProperties") or {}),
                      **{f"source.{k}": str(v)[:256] for k, v in source.items()}}
        sagemaker.create_model_package(
            ModelPackageGroupName=self.group,
            ModelPackageDescription=f"promoted from {source['model_package_arn']}"[:1024],
            InferenceSpecification=described["InferenceSpecification"],
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties=properties,
            Tags=self._tags(**{"mlops:source": source["model_package_arn"]}),
        )

    # -- deployment ---------------------------------------------------------------------------------
    def endpoint_name(self, env: str) -> str:
        return resource_name(self.config.model.name, env)

    def _endpoint(self, env: str) -> dict | None:
        with self.scoped(env):
            try:
                return self.client("sagemaker").describe_endpoint(EndpointName=self.endpoint_name(env))
            except ClientError as exc:
                if _not_found(exc):
                    return None
                raise

    def _endpoint_tags(self, env: str) -> dict[str, str]:
        endpoint = self._endpoint(env)
        if not endpoint:
            return {}
        with self.scoped(env):
            tags = self.client("sagemaker").list_tags(ResourceArn=endpoint["EndpointArn"]).get("Tags", [])
        return {t["Key"]: t["Value"] for t in tags}

    def _version_for(self, env: str) -> ModelVersion:
        if self.config.environment(env).approval_required:
            approved = self._packages("Approved")
            if not approved:
                raise StageFailed(
                    f"deploy: {env} needs an Approved version and model package group {self.group} has none; "
                    f"approve one in SageMaker Studio (Models > Registered models > {self.group}) or run "
                    f"`python -m {sm.package_name()} promote --target aws --version N`"
                )
            return self._version_of(approved[0]["ModelPackageArn"])
        candidates = [p for p in self._packages() if p.get("ModelApprovalStatus") != "Rejected"]
        if not candidates:
            raise StageFailed(
                f"deploy: model package group {self.group} holds no version; run `register` first"
            )
        return self._version_of(candidates[0]["ModelPackageArn"])

    def deploy(self, env: str, version: str | None = None) -> Deployment:
        self.check_framework("deploy")
        if version is None:
            return self._deploy(env, self._version_for(env))
        chosen = self._package(str(version))
        self.check_deployable(env, str(version), chosen.status)
        return self._deploy(env, chosen)

    # -- the serving contract ---------------------------------------------------------------------
    def fetch_model(self, version: str, dest: Path) -> Path | None:
        described = self.client("sagemaker", tooling=True).describe_model_package(
            ModelPackageName=self._package(version).uri)
        self._download_model(described["InferenceSpecification"]["Containers"][0]["ModelDataUrl"], dest / "model")
        return dest / "model"

    def serving_version(self, env: str) -> str | None:
        arn = self._endpoint_tags(env).get(TAG_PACKAGE)
        return self._version_of(arn).version if arn else None

    def due_version(self, env: str) -> str | None:
        return self._version_for(env).version

    def _deploy(self, env: str, version: ModelVersion, history: list[str] | None = None) -> Deployment:
        with self.scoped(env):
            return self._deploy_here(env, version, history)

    def _deploy_here(self, env: str, version: ModelVersion, history: list[str] | None) -> Deployment:
        if version.status == "Rejected":
            raise StageFailed(f"deploy: version {version.version} of {self.group} is Rejected")
        sagemaker = self.client("sagemaker")
        settings = self.aws.endpoint(env)
        endpoint = self.endpoint_name(env)
        name = resource_name(self.config.model.name, env, f"v{version.version}", _stamp())
        tags = self._tags(**{TAG_VERSION: version.version, "mlops:env": env})
        self.create_model(name, version, tags)
        sagemaker.create_endpoint_config(
            EndpointConfigName=name,
            ProductionVariants=[
                {
                    "VariantName": VARIANT,
                    "ModelName": name,
                    "InstanceType": settings.instance_type,
                    "InitialInstanceCount": settings.instance_count,
                    "InitialVariantWeight": 1.0,
                }
            ],
            DataCaptureConfig={
                "EnableCapture": self.config.capture_percent(env) > 0,
                "InitialSamplingPercentage": self.config.capture_percent(env),
                "DestinationS3Uri": f"s3://{self.bucket()}/{self._key('data-capture', env)}",
                "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
                "CaptureContentTypeHeader": {"JsonContentTypes": ["application/json"]},
            },
            Tags=tags,
        )
        alarms = self._alarms(endpoint)
        existing = self._endpoint(env)
        previous = self._endpoint_tags(env) if existing else {}
        if existing is None:
            sagemaker.create_endpoint(EndpointName=endpoint, EndpointConfigName=name, Tags=tags)
        else:
            if existing["EndpointStatus"] != "InService":
                self._wait_in_service(endpoint)
            self._disable_autoscaling(endpoint)  # a blue/green update replaces the fleet it scales
            sagemaker.update_endpoint(
                EndpointName=endpoint,
                EndpointConfigName=name,
                RetainAllVariantProperties=False,
                DeploymentConfig={
                    "BlueGreenUpdatePolicy": {
                        "TrafficRoutingConfiguration": {
                            "Type": "CANARY",
                            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": settings.canary_percent},
                            "WaitIntervalInSeconds": settings.canary_wait_seconds,
                        },
                        "TerminationWaitInSeconds": settings.termination_wait_seconds,
                        "MaximumExecutionTimeoutInSeconds": max(
                            600, settings.canary_wait_seconds + settings.termination_wait_seconds + 1800
                        ),
                    },
                    "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": a} for a in alarms]},
                },
            )
        self._wait_in_service(endpoint)
        described = self._endpoint(env) or {}
        if existing is not None and described.get("EndpointConfigName") != name:
            raise StageFailed(
                f"deploy: {endpoint} rolled back to {described.get('EndpointConfigName')}: an alarm "
                f"({', '.join(alarms)}) fired during the canary of version {version.version}"
            )
        if history is None:
            history = [v for v in previous.get(TAG_HISTORY, "").split(",") if v]
            if previous.get(TAG_VERSION) and previous[TAG_VERSION] != version.version:
                history.append(previous[TAG_VERSION])
        sagemaker.add_tags(
            ResourceArn=described["EndpointArn"],
            Tags=[
                {"Key": TAG_VERSION, "Value": version.version},
                {"Key": TAG_PACKAGE, "Value": version.uri},
                {"Key": TAG_HISTORY, "Value": ",".join(history[-HISTORY_LENGTH:])},
            ],
        )
        self._enable_autoscaling(endpoint, settings)
        return Deployment(env, endpoint, version.version)

    def create_model(self, name: str, version: ModelVersion, tags: list[dict]) -> None:
        """A SageMaker Model of `version`'s container (image, model.tar.gz, environment): what an
        endpoint config or a transform job runs."""
        container = self.client("sagemaker", tooling=True).describe_model_package(ModelPackageName=version.uri)[
            "InferenceSpecification"
        ]["Containers"][0]
        self.client("sagemaker").create_model(
            ModelName=name,
            PrimaryContainer={
                "Image": container["Image"],
                "ModelDataUrl": container["ModelDataUrl"],
                "Environment": container.get("Environment", {}),
            },
            ExecutionRoleArn=self.role_arn(),
            Tags=tags,
        )

    def _wait_in_service(self, endpoint: str) -> None:
        try:
            self._wait("endpoint_in_service", EndpointName=endpoint)
        except WaiterError:
            described = self.client("sagemaker").describe_endpoint(EndpointName=endpoint)
            raise StageFailed(
                f"deploy: endpoint {endpoint} is {described['EndpointStatus']}: "
                f"{described.get('FailureReason', 'no reason given')}"
            ) from None

    def _alarms(self, endpoint: str) -> list[str]:
        """CloudWatch alarms that roll a canary back: any 5xx, or model latency over the smoke bound."""
        cloudwatch = self.client("cloudwatch")
        dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": VARIANT}]
        specs = {
            f"{endpoint}-5xx": ("Invocation5XXErrors", "Sum", 1.0, "model errors (HTTP 5xx)"),
            f"{endpoint}-latency": (
                "ModelLatency",
                "Average",
                self.config.smoke.max_latency_ms * 1000.0,
                "average model latency above smoke.max_latency_ms",
            ),
        }
        for alarm, (metric, statistic, threshold, what) in specs.items():
            cloudwatch.put_metric_alarm(
                AlarmName=alarm,
                AlarmDescription=f"{endpoint}: {what}; rolls back a blue/green update",
                Namespace="AWS/SageMaker",
                MetricName=metric,
                Dimensions=dimensions,
                Statistic=statistic,
                Period=60,
                EvaluationPeriods=1,
                DatapointsToAlarm=1,
                Threshold=threshold,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
                TreatMissingData="notBreaching",
                Tags=self._tags(),
            )
        return list(specs)

    def _resource_id(self, endpoint: str) -> str:
        return f"endpoint/{endpoint}/variant/{VARIANT}"

    def _enable_autoscaling(self, endpoint: str, settings) -> None:
        scaling = self.client("application-autoscaling")
        scaling.register_scalable_target(
            ServiceNamespace="sagemaker",
            ResourceId=self._resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
            MinCapacity=settings.instance_count,
            MaxCapacity=settings.max_instance_count,
        )
        scaling.put_scaling_policy(
            PolicyName=f"{endpoint}-invocations",
            ServiceNamespace="sagemaker",
            ResourceId=self._resource_id(endpoint),
            ScalableDimension=SCALABLE_DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": float(settings.invocations_per_instance),
                "PredefinedMetricSpecification": {
                    "PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"
                },
                "ScaleInCooldown": 300,
                "ScaleOutCooldown": 60,
            },
        )

    def _disable_autoscaling(self, endpoint: str) -> None:
        scaling = self.client("application-autoscaling")
        targets = scaling.describe_scalable_targets(
            ServiceNamespace="sagemaker",
            ResourceIds=[self._resource_id(endpoint)],
            ScalableDimension=SCALABLE_DIMENSION,
        )["ScalableTargets"]
        if targets:
            scaling.deregister_scalable_target(
                ServiceNamespace="sagemaker",
                ResourceId=self._resource_id(endpoint),
                ScalableDimension=SCALABLE_DIMENSION,
            )

    def invoke(self, env: str, instances: list) -> list:
        endpoint = self.endpoint_name(env)
        try:
            with self.scoped(env):
                runtime = self.client("sagemaker-runtime")
            response = runtime.invoke_endpoint(
                EndpointName=endpoint,
                ContentType="application/json",
                Accept="application/json",
                Body=json.dumps({"instances": instances}).encode(),
            )
        except ClientError as exc:
            raise StageFailed(
                f"{endpoint} answered {exc.response['Error'].get('Code')}: "
                f"{exc.response['Error'].get('Message', '')[:500]}"
            ) from None
        body = response["Body"].read()
        try:
            return json.loads(body)["predictions"]
        except (ValueError, KeyError, TypeError):
            raise StageFailed(
                f'{endpoint} answered something that is not {{"predictions": [...]}}: {body[:300]!r}'
            ) from None

    def rollback(self, env: str) -> ModelVersion:
        tags = self._endpoint_tags(env)
        history = [v for v in tags.get(TAG_HISTORY, "").split(",") if v]
        if not history:
            raise StageFailed(f"rollback: {env} has no previous version to return to")
        previous = self._package(history[-1])
        self._deploy(env, previous, history=history[:-1])
        return previous

    def undeploy(self, env: str) -> None:
        with self.scoped(env):
            self._undeploy(env)

    def _undeploy(self, env: str) -> None:
        endpoint = self.endpoint_name(env)
        self._monitor().remove(env)
        if self._endpoint(env) is None:
            return
        self._disable_autoscaling(endpoint)
        self.client("sagemaker").delete_endpoint(EndpointName=endpoint)
        self.client("cloudwatch").delete_alarms(AlarmNames=[f"{endpoint}-5xx", f"{endpoint}-latency"])

    # -- operate: SageMaker Model Monitor (targets/aws/monitor.py) ----------------------------------------
    def _monitor(self):
        from .monitor import ModelMonitor

        return ModelMonitor(self)

    def setup_monitoring(self, env: str, version: str, baseline_dir: Path) -> dict | None:
        if self.config.capture_percent(env) == 0:
            return None  # nothing is captured, so there is nothing to monitor
        with self.scoped(env):
            return self._monitor().setup(env, version, baseline_dir)

    def latest_monitor_result(self, env: str) -> MonitorResult | None:
        with self.scoped(env):
            return self._monitor().latest(env)

    # -- batch: SageMaker Batch Transform (targets/aws/batch.py) -----------------------------------------
    def batch_job(self, version: str, source: str, output: str) -> dict:
        from .batch import BatchTransform, s3_location

        s3_location(source, "--input")  # refused before any AWS call
        s3_location(output, "--output")
        return BatchTransform(self).run(self._package(version), source, output)

    def pipeline_definition(self) -> dict:
        return sm.definition(self.config, self._commit())


TARGET = AwsTarget
