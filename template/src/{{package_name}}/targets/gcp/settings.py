"""The `gcp:` section of mlops.yaml: where Vertex AI trains, registers and serves this model."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, model_validator

from ...settings import Strict

_BUCKET = r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$"
_SERVICE_ACCOUNT = r"^[a-z][a-z0-9-]{4,28}[a-z0-9]@[a-z][a-z0-9-]{4,28}[a-z0-9]\.iam\.gserviceaccount\.com$"
# Vertex AI's prebuilt scikit-learn serving images, e.g.
# us-docker.pkg.dev/vertex-ai/prediction/sklearn-cpu.1-6:latest
PREBUILT_SKLEARN = re.compile(
    r"^(us|europe|asia)-docker\.pkg\.dev/vertex-ai/prediction/sklearn-cpu\.(\d+)-(\d+):latest$"
)


class GcpEnvironment(Strict):
    """Serving resources of one environment's Vertex AI endpoint."""

    machine_type: str = Field("n1-standard-2", pattern=r"^[a-z0-9]+-[a-z0-9-]+$")
    min_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(1, ge=1)
    # Share of traffic the new version gets while the old one still serves; 100 = no canary.
    canary_percent: int = Field(10, ge=1, le=100)

    @model_validator(mode="after")
    def _replicas(self) -> GcpEnvironment:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        return self


class GcpBatch(Strict):
    """Machines of `batch --target gcp` (a Vertex AI batch prediction job) and how long it may take."""

    machine_type: str = Field("n1-standard-2", pattern=r"^[a-z0-9]+-[a-z0-9-]+$")
    starting_replicas: int = Field(1, ge=1)
    max_replicas: int = Field(2, ge=1)
    # Rows per prediction request the job sends the serving container (Vertex AI's default is 64).
    batch_size: int = Field(64, ge=1, le=10_000)
    # The stage cancels the job and fails after this; the Cloud Build timeout (2 h) bounds a scheduled batch.
    timeout_minutes: int = Field(60, ge=1, le=7 * 24 * 60)

    @model_validator(mode="after")
    def _replicas(self) -> GcpBatch:
        if self.max_replicas < self.starting_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below starting_replicas ({self.starting_replicas})"
            )
        return self


class GcpSettings(Strict):
    project_id: str = Field(pattern=r"^[a-z][a-z0-9-]{4,28}[a-z0-9]$")
    region: str = Field(pattern=r"^[a-z]+-[a-z]+\d+$")
    # Model bundles, build artifacts and the Vertex AI pipeline root live in this bucket.
    bucket: str = Field(pattern=_BUCKET)
    # Where Vertex AI Pipelines keeps its run outputs (default: gs://<bucket>/pipeline-root).
    pipeline_root: str | None = Field(None, pattern=r"^gs://[a-z0-9][a-z0-9._-]{1,61}[a-z0-9](/.*)?$")
    # Identity of pipeline runs and serving containers (never the Compute Engine default account).
    service_account: str = Field(pattern=_SERVICE_ACCOUNT)
    # in_step: the Cloud Build step trains; vertex_pipeline: a KFP pipeline on Vertex AI trains.
    training: Literal["in_step", "vertex_pipeline"] = "in_step"
    pipeline_timeout_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    # Image of the pipeline's components (a Python image with the repository's Python version).
    component_image: str = Field("python:3.11-slim", min_length=1)
    serving_image: str = Field(min_length=1)
    # What register does when the serving image's scikit-learn differs from the one that trained the
    # model (a pickle is only guaranteed to load in the version that wrote it): error or warn.
    sklearn_mismatch: Literal["error", "warn"] = "warn"
    deploy_timeout_minutes: int = Field(30, ge=1, le=180)
    # Operate. BigQuery dataset of the endpoints' request-response logs (one table per environment).
    capture_dataset: str = Field("mlops_capture", pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")
    # How often Vertex AI Model Monitoring compares the logged traffic with the training data.
    monitor_interval_hours: int = Field(1, ge=1, le=24)
    # Vertex AI's distance (Jensen-Shannon for numbers, L-infinity for categories) above which a feature
    # has drifted; null: mapped from monitoring.drift_threshold (PSI) per feature (targets/gcp/monitor.py).
    monitor_threshold: float | None = Field(None, gt=0, le=1)
    environments: dict[str, GcpEnvironment] = Field(default_factory=dict)
    batch: GcpBatch = GcpBatch()

    @property
    def root(self) -> str:
        return self.pipeline_root or f"gs://{self.bucket}/pipeline-root"

    def environment(self, name: str) -> GcpEnvironment:
        return self.environments.get(name, GcpEnvironment())

    def serving_sklearn(self) -> str | None:
        """The scikit-learn major.minor of a prebuilt serving image, None for another image."""
        match = PREBUILT_SKLEARN.match(self.serving_image)
        return f"{match.group(2)}.{match.group(3)}" if match else None
