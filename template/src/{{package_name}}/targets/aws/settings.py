"""The `aws:` section of mlops.yaml.

Instance types are checked against the enums of botocore's SageMaker service model (the same list
the SageMaker API accepts) whenever botocore is installed, so a typo fails at load time with exit 2,
before any AWS call; without botocore (the local target's install) only their shape is checked.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from pydantic import Field, field_validator, model_validator

from ...settings import DEEP_CHECKS, Strict

INSTANCE_TYPE_PATTERN = r"^ml\.[a-z0-9-]+\.[a-z0-9]+$"
# The shapes of the SageMaker API whose enum lists the instance types each use accepts.
ENDPOINT_INSTANCE_SHAPE = "ProductionVariantInstanceType"
TRAINING_INSTANCE_SHAPE = "TrainingInstanceType"
PROCESSING_INSTANCE_SHAPE = "ProcessingInstanceType"
TRANSFORM_INSTANCE_SHAPE = "TransformInstanceType"
# CodeBuild (infra/aws/pipeline.yaml) passes what the stack created; these win over mlops.yaml.
ROLE_VARIABLE = "SAGEMAKER_ROLE_ARN"
BUCKET_VARIABLE = "ARTIFACT_BUCKET"


@lru_cache(maxsize=1)
def _sagemaker_model():
    try:
        import botocore.session
    except ImportError:
        return None
    return botocore.session.get_session().get_service_model("sagemaker")


def service_enum(shape: str) -> tuple[str, ...] | None:
    """The enum of a SageMaker shape from botocore's service model; None without botocore."""
    model = _sagemaker_model()
    return None if model is None else tuple(model.shape_for(shape).enum)


@lru_cache(maxsize=1)
def sklearn_container_versions() -> tuple[str, ...] | None:
    """Serving versions of the prebuilt scikit-learn container, from the SageMaker SDK's own image
    table (read as a file: importing the SDK takes seconds); None without the SDK."""
    from importlib import metadata

    try:
        table = metadata.distribution("sagemaker-core").locate_file(
            "sagemaker/core/image_uri_config/sklearn.json"
        )
        return tuple(json.loads(Path(table).read_text())["inference"]["versions"])
    except (metadata.PackageNotFoundError, OSError):
        return None


def check_instance_type(value: str, shape: str) -> str:
    allowed = service_enum(shape) if DEEP_CHECKS.get() else None
    if allowed is not None and value not in allowed:
        close = (
            [t for t in allowed if t.split(".")[1] == value.split(".")[1]] if value.count(".") == 2 else []
        )
        hint = f" (same family: {', '.join(close[:8])})" if close else ""
        raise ValueError(f"'{value}' is not a SageMaker {shape} in botocore's service model{hint}")
    return value


class Training(Strict):
    # true: train as a SageMaker training job in the prebuilt scikit-learn container (the model is
    # pickled by the scikit-learn that serves it); false: train inside the CodeBuild container.
    managed: bool = True
    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    max_runtime_seconds: int = Field(3600, ge=60, le=432000)
    # Instance type of the processing (data preparation, evaluation) steps of the SageMaker Pipeline.
    processing_instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)

    @field_validator("instance_type")
    @classmethod
    def _training_type(cls, value: str) -> str:
        return check_instance_type(value, TRAINING_INSTANCE_SHAPE)

    @field_validator("processing_instance_type")
    @classmethod
    def _processing_type(cls, value: str) -> str:
        return check_instance_type(value, PROCESSING_INSTANCE_SHAPE)


class Endpoint(Strict):
    """How one environment is served: capacity, autoscaling and the canary update. How much of its traffic
    is captured is `monitoring.capture_percent` (the same key on every target)."""

    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    instance_count: int = Field(1, ge=1, le=100)
    max_instance_count: int = Field(2, ge=1, le=100)
    # Target of the autoscaling policy: invocations per instance per minute.
    invocations_per_instance: int = Field(100, ge=1)
    # Blue/green update: share of capacity that gets the new model first, how long it is watched
    # (CloudWatch alarms roll it back automatically), and how long the old fleet is kept after.
    canary_percent: int = Field(10, ge=1, le=99)
    canary_wait_seconds: int = Field(300, ge=0, le=3600)
    termination_wait_seconds: int = Field(300, ge=0, le=3600)

    @field_validator("instance_type")
    @classmethod
    def _endpoint_type(cls, value: str) -> str:
        return check_instance_type(value, ENDPOINT_INSTANCE_SHAPE)

    @model_validator(mode="after")
    def _counts(self) -> Endpoint:
        if self.max_instance_count < self.instance_count:
            raise ValueError(
                f"max_instance_count ({self.max_instance_count}) is below "
                f"instance_count ({self.instance_count})"
            )
        return self


class Monitor(Strict):
    """SageMaker Model Monitor: the processing jobs that compute the baseline and check the captured
    traffic against it every hour (data quality; model quality when monitoring.ground_truth is s3://)."""

    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    # An hourly schedule's job must end within the hour.
    max_runtime_seconds: int = Field(1800, ge=60, le=3600)
    volume_size_gb: int = Field(20, ge=1, le=512)

    @field_validator("instance_type")
    @classmethod
    def _monitor_type(cls, value: str) -> str:
        return check_instance_type(value, PROCESSING_INSTANCE_SHAPE)


class Batch(Strict):
    """SageMaker Batch Transform (`batch --target aws`): the instances that score, how long the run may
    take (Batch Transform has no runtime limit of its own: the job is stopped after this), and the
    largest request sent to the container (rows are gathered into requests up to this size)."""

    instance_type: str = Field("ml.m5.large", pattern=INSTANCE_TYPE_PATTERN)
    instance_count: int = Field(1, ge=1, le=100)
    timeout_seconds: int = Field(3600, ge=60, le=172800)
    max_payload_mb: int = Field(6, ge=1, le=100)

    @field_validator("instance_type")
    @classmethod
    def _transform_type(cls, value: str) -> str:
        return check_instance_type(value, TRANSFORM_INSTANCE_SHAPE)


class AwsSettings(Strict):
    region: str = Field(pattern=r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
    # Execution role of training jobs and endpoints, and the bucket for artifacts and data capture:
    # both are outputs of infra/aws/pipeline.yaml. Empty = take SAGEMAKER_ROLE_ARN / ARTIFACT_BUCKET
    # from the environment (CodeBuild sets them).
    role_arn: str = Field("", pattern=r"^(arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+)?$")
    bucket: str = Field("", pattern=r"^([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])?$")
    # Key prefix of everything this project writes to the bucket.
    prefix: str = Field("mlops", pattern=r"^[A-Za-z0-9][A-Za-z0-9!_.*'()/-]{0,99}$")
    # Version of the prebuilt SageMaker scikit-learn container (training and serving).
    framework_version: str = "1.9-0"
    training: Training = Training()
    monitor: Monitor = Monitor()
    batch: Batch = Batch()
    # Per environment of `environments:`; an environment not listed here gets the defaults.
    endpoints: dict[str, Endpoint] = {}

    @field_validator("framework_version")
    @classmethod
    def _known_framework(cls, value: str) -> str:
        known = sklearn_container_versions()
        if known is not None and value not in known:
            raise ValueError(
                f"'{value}' is not a SageMaker scikit-learn container version (known: {', '.join(known)})"
            )
        return value

    def endpoint(self, env: str) -> Endpoint:
        return self.endpoints.get(env, Endpoint())

    def resolved_role_arn(self) -> str:
        return os.environ.get(ROLE_VARIABLE) or self.role_arn

    def resolved_bucket(self) -> str:
        return os.environ.get(BUCKET_VARIABLE) or self.bucket
