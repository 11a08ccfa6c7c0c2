"""Google Cloud: Vertex AI Model Registry, endpoints and pipelines.

Registry. Every registered model is a new *version* of one parent model (display name =
`model.name`), uploaded on Vertex AI's prebuilt scikit-learn serving container, or with serving.mode
image on this repository's image (MODEL_IMAGE, the one this commit's build pushed). Version labels
carry the approval status (`approval: approved|pending|rejected`), the commit, and for each
environment the version it served before (`previous_<env>`), so the registry itself holds the
history that `rollback` walks back. Version aliases name what each environment runs
(`staging`, `prod`): `deploy` moves `staging`, `promote` moves `prod`, `rollback` moves either back.

Endpoints. One endpoint per environment (`<model>-<env>`). A new version is deployed next to the
serving one with `canary_percent` of the traffic; once `smoke.requests` predictions from the new
deployed model came back well formed, it gets all traffic and the old one is undeployed. A failed
canary is undeployed and the old version keeps serving.

Operate. Every endpoint logs `monitoring.capture_percent` of its requests to BigQuery, and `deploy`
creates or updates the endpoint's Vertex AI Model Monitoring job for the version it deployed (from
the version's baseline.csv); `monitor` reads that job's newest statistics (monitor.py).

Batch. `batch --target gcp` runs a Vertex AI batch prediction job on a registered version (batch.py).

isolation: multi. Staging and prod live in projects of their own (environments.<env>.gcp_project_id);
training and the registry of record stay in gcp.project_id. Deploying or promoting into such an
environment puts the version into that project's Model Registry first: a new version uploaded from the
same artifacts (gs://) with the same serving container, labelled with where it came from (source_project,
source_model, source_version; the version description holds them too). Why not ModelService.CopyModel:
its reference says the source model must be in the same project, and its guide that a cross-project copy
cannot carry a custom container (serving.mode image) and needs the destination's Vertex AI service agent
to hold the service-agent role in the source project; an upload needs only read access to the bucket
(and to the image). Version numbers stay those of gcp.project_id on every command (promote --version 3,
release records): a copy answers with its source version.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import sklearn

from ...errors import ConfigError, StageFailed
from ..base import Deployment, ModelVersion, MonitorResult, Target

PACKAGE = __package__.split(".")[0]
BUNDLE_FILES = ("model.joblib", "model.json")
# Saved with a version when the bundle has them: the monitor's baseline and the training lineage
# (a version registered before they existed has none).
OPTIONAL_FILES = ("baseline.json", "baseline.csv", "lineage.json")
PIPELINE_RECORD = "vertex_pipeline.json"
# serving.mode image: how Vertex AI runs this repository's image (its server answers both routes, on the
# port Vertex AI passes as AIP_HTTP_PORT; the model is at AIP_STORAGE_URI, the version's artifact URI).
IMAGE_CONTAINER = {"serving_container_predict_route": "/predict", "serving_container_health_route": "/health",
                   "serving_container_ports": [8080]}
_DONE = {"PIPELINE_STATE_SUCCEEDED", "PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED"}


def _label(value: object) -> str:
    """A Vertex AI label value: lower-case letters, digits, '_' and '-', at most 63 characters."""
    return re.sub(r"[^a-z0-9_-]", "-", str(value).lower())[:63]


def _split_uri(uri: str) -> tuple[str, str]:
    bucket, _, path = uri.removeprefix("gs://").partition("/")
    return bucket, path.strip("/")


class GcpTarget(Target):
    name = "gcp"
    credentials = None  # None: Application Default Credentials (Cloud Build's service account)

    def __init__(self, config, root: Path):
        super().__init__(config, root)
        self.gcp = config.gcp
        self._sdk = None
        self._storage = None
        self._jobs = None

    # -- clients -----------------------------------------------------------------------------------
    @property
    def aiplatform(self):
        if self._sdk is None:
            from google.cloud import aiplatform

            aiplatform.init(
                project=self.gcp.project_id, location=self.gcp.region, credentials=self.credentials,
                staging_bucket=f"gs://{self.gcp.bucket}",
            )
            self._sdk = aiplatform
        return self._sdk

    @property
    def storage(self):
        if self._storage is None:
            from google.cloud import storage

            self._storage = storage.Client(project=self.gcp.project_id, credentials=self.credentials)
        return self._storage

    def _upload_file(self, local: Path, uri: str) -> None:
        bucket, path = _split_uri(uri)
        self.storage.bucket(bucket).blob(path).upload_from_filename(str(local))

    def _download_file(self, uri: str, local: Path) -> None:
        bucket, path = _split_uri(uri)
        local.parent.mkdir(parents=True, exist_ok=True)
        self.storage.bucket(bucket).blob(path).download_to_filename(str(local))

    def _upload_optional(self, model_dir: Path, uri: str) -> None:
        for name in OPTIONAL_FILES:
            if (model_dir / name).is_file():
                self._upload_file(model_dir / name, f"{uri}/{name}")

    def _download_optional(self, uri: str, local: Path) -> None:
        from google.api_core import exceptions

        try:
            self._download_file(uri, local)
        except (exceptions.NotFound, FileNotFoundError):
            local.unlink(missing_ok=True)  # the client leaves an empty file behind

    # -- registry ----------------------------------------------------------------------------------
    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def project(self, env: str | None = None) -> str:
        """The project of `env`'s registry and endpoint (isolation: multi), else gcp.project_id."""
        own = self.config.environment(env).gcp_project_id if env else None
        return own or self.gcp.project_id

    def _isolated(self, env: str) -> bool:
        return self.project(env) != self.gcp.project_id

    def _parent(self, project: str | None = None):
        """The parent model of every version (in `project`), or None before the first registration."""
        found = self.aiplatform.Model.list(filter=f'display_name="{self.config.model.name}"',
                                           project=project or self.gcp.project_id, location=self.gcp.region)
        return found[0] if found else None

    def _version(self, version: str):
        parent = self._parent()
        if parent is None:
            raise StageFailed(
                f"Vertex AI: model {self.config.model.name} has no version; run `register` first"
            )
        return self.aiplatform.Model(parent.resource_name, version=str(version))

    def _versions(self, project: str | None = None) -> list:
        parent = self._parent(project)
        if parent is None:
            return []
        registry = self.aiplatform.models.ModelRegistry(parent.resource_name)
        return [(parent, info) for info in registry.list_versions()]

    def _aliased(self, alias: str):
        """The version carrying `alias` (an environment's alias: in that environment's project), or None."""
        project = self.project(alias) if alias in self.config.environments else None
        for parent, info in self._versions(project):
            if alias in info.version_aliases:
                return self.aiplatform.Model(parent.resource_name, version=info.version_id)
        return None

    def _copy_of(self, env: str, version: str):
        """isolation: multi. The version of `env`'s project put there from `version` of gcp.project_id."""
        for parent, info in self._versions(self.project(env)):
            model = self.aiplatform.Model(parent.resource_name, version=info.version_id)
            labels = model.labels or {}
            if (labels.get("source_project") == _label(self.gcp.project_id)
                    and labels.get("source_version") == _label(version)):
                return model
        return None

    @staticmethod
    def _public_version(model) -> str:
        """The version number every command uses: gcp.project_id's (a copy answers with its source's)."""
        return str((model.labels or {}).get("source_version") or model.version_id)

    @classmethod
    def _as_model_version(cls, model) -> ModelVersion:
        try:
            described = json.loads(model.version_description or "{}")
        except ValueError:
            described = {}
        status = {"approved": "Approved", "rejected": "Rejected"}.get(
            (model.labels or {}).get("approval"), "PendingManualApproval"
        )
        return ModelVersion(cls._public_version(model), described.get("metrics", {}), status,
                            model.versioned_resource_name, described.get("source") or {})

    def _set_labels(self, model, **labels: str) -> None:
        """Labels of this *version* (Model.update would write the default version's: it drops the @id)."""
        from google.cloud.aiplatform_v1 import Model as GapicModel
        from google.protobuf import field_mask_pb2

        merged = {**(model.labels or {}), **{k: _label(v) for k, v in labels.items()}}
        model.api_client.update_model(
            model=GapicModel(name=model.versioned_resource_name, labels=merged),
            update_mask=field_mask_pb2.FieldMask(paths=["labels"]),
        )

    def _move_alias(self, alias: str, model, remember: bool) -> None:
        """Point `alias` at `model`; with `remember`, the version it leaves is recorded for rollback."""
        current = self._aliased(alias)
        if current is not None and str(current.version_id) == str(model.version_id):
            return
        registry = self.aiplatform.models.ModelRegistry(model.resource_name)
        if current is not None:
            registry.remove_version_aliases([alias], str(current.version_id))
            if remember:
                self._set_labels(model, **{f"previous_{alias}": current.version_id})
        registry.add_version_aliases([alias], str(model.version_id))

    def _check_sklearn(self) -> None:
        serving = self.gcp.serving_sklearn()
        trained = ".".join(sklearn.__version__.split(".")[:2])
        if serving is None or serving == trained:
            return
        message = (
            f"gcp.serving_image serves scikit-learn {serving} but this model was trained with "
            f"{sklearn.__version__}; a pickle is only guaranteed to load in the version that wrote it. "
            f"Pin scikit-learn=={serving}.* in pyproject.toml, or serve with an image that has {trained}."
        )
        if self.gcp.sklearn_mismatch == "error":
            raise ConfigError(f"mlops.yaml: gcp.sklearn_mismatch is error: {message}")
        print(f"warning: {message} The canary on deploy checks that it loads.", file=sys.stderr)

    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion:
        self.check_framework("register", model_dir)
        approval = "approved" if approved else "pending"
        record = self._pipeline_record()
        model_dir = Path(model_dir)
        from_pipeline = model_dir.resolve() == (self.artifacts / "model").resolve()
        if record and record.get("model_version") and from_pipeline:
            # The Vertex AI pipeline of this build already uploaded this bundle (its `upload` task).
            model = self._version(record["model_version"])
            self._upload_optional(model_dir, model.uri)  # written after the pipeline ran (baseline)
            self._set_labels(model, approval=approval)
            return self._as_model_version(self._version(record["model_version"]))
        image = self.serving_image()  # serving.mode image: MODEL_IMAGE (exit 2 naming it when unset)
        if image is None:
            self._check_sklearn()
        digest = hashlib.sha256((model_dir / "model.joblib").read_bytes()).hexdigest()[:16]
        commit = str(lineage.get("git_commit", "unknown"))
        uri = f"gs://{self.gcp.bucket}/models/{self.config.model.name}/{_label(commit)[:12]}-{digest}"
        for name in BUNDLE_FILES:
            self._upload_file(model_dir / name, f"{uri}/{name}")
        self._upload_optional(model_dir, uri)
        sample = self.artifacts / "sample.json"
        if sample.exists():  # lets a later build (e.g. prod) smoke-test this version without retraining
            self._upload_file(sample, f"{uri}/sample.json")
        parent = self._parent()
        model = self.aiplatform.Model.upload(
            display_name=self.config.model.name,
            artifact_uri=uri,
            serving_container_image_uri=image or self.gcp.serving_image,
            **(IMAGE_CONTAINER if image else {}),
            parent_model=parent.resource_name if parent else None,
            is_default_version=parent is None,
            version_description=json.dumps({
                "metrics": {k: round(v, 6) for k, v in metrics.items()},
                "data": lineage.get("data_fingerprint"),
            }),
            description=self.config.project,
            labels={
                "approval": approval, "git_commit": _label(commit), "managed_by": "mlops-gen",
                "trained_sklearn": _label(sklearn.__version__.replace(".", "_")),
                "serving": "image" if image else "prebuilt",
            },
            project=self.gcp.project_id, location=self.gcp.region,
            sync=True,
        )
        return self._as_model_version(model)

    def _into(self, env: str, model, approval: str | None = None):
        """isolation: multi. `model` (a version of gcp.project_id, or already `env`'s) as a version of
        `env`'s project: the one put there before, or a new one uploaded from the same artifacts with the
        same serving container, labelled and described with its source. Single: `model` itself."""
        if not self._isolated(env) or model.resource_name.split("/")[1] == self.project(env):
            return model
        version = str(model.version_id)
        copy = self._copy_of(env, version)
        if copy is not None:
            return copy
        project = self.project(env)
        source = {"project": self.gcp.project_id, "model": model.versioned_resource_name, "version": version}
        labels = model.labels or {}
        spec = model.gca_resource.container_spec
        routes = {"serving_container_predict_route": spec.predict_route or None,
                  "serving_container_health_route": spec.health_route or None,
                  "serving_container_ports": [p.container_port for p in spec.ports] or None}
        try:
            described = json.loads(model.version_description or "{}")
        except ValueError:
            described = {}
        parent = self._parent(project)
        print(f"{env}: version {version} of {self.gcp.project_id} into the Model Registry of {project}",
              flush=True)
        return self.aiplatform.Model.upload(
            display_name=self.config.model.name,
            artifact_uri=model.uri,
            serving_container_image_uri=spec.image_uri,
            **{k: v for k, v in routes.items() if v},
            parent_model=parent.resource_name if parent else None,
            is_default_version=parent is None,
            version_description=json.dumps({**described, "source": source}),
            description=self.config.project,
            labels={**{k: v for k, v in labels.items() if not k.startswith("previous_")},
                    "approval": approval or labels.get("approval", "pending"),
                    "source_project": _label(self.gcp.project_id),
                    "source_model": _label(model.name), "source_version": _label(version)},
            project=project, location=self.gcp.region,
            sync=True,
        )

    def champion(self) -> ModelVersion | None:
        model = self._aliased("prod")
        return self._as_model_version(model) if model is not None else None

    def _newest_deployable(self, env: str | None = None):
        parent = self._parent()
        if parent is None:
            raise StageFailed("deploy: the Vertex AI registry holds no version; run `register` first")
        # isolation: multi: a version rolled back in env's project is rejected there (not in gcp.project_id)
        rejected = set()
        if env is not None and self._isolated(env):
            for other, info in self._versions(self.project(env)):
                copy = self.aiplatform.Model(other.resource_name, version=info.version_id)
                if (copy.labels or {}).get("approval") == "rejected":
                    rejected.add(self._public_version(copy))
        infos = self.aiplatform.models.ModelRegistry(parent.resource_name).list_versions()
        for info in sorted(infos, key=lambda i: int(i.version_id), reverse=True):
            model = self.aiplatform.Model(parent.resource_name, version=info.version_id)
            if (model.labels or {}).get("approval") != "rejected" and str(info.version_id) not in rejected:
                return model
        raise StageFailed("deploy: every version in the Vertex AI registry is rejected")

    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        if version is None:
            model = self._aliased("staging")
            if model is None:
                raise StageFailed("promote: no version carries the alias staging; name one with --version")
            if self._isolated("staging"):  # staging's copy: promote its source, the version of record
                model = self._version(self._public_version(model))
        else:
            model = self._version(version)
        if (model.labels or {}).get("approval") == "rejected":
            raise StageFailed(f"promote: version {model.version_id} is rejected")
        if self._isolated(to_env):
            # Across the boundary: approved as a version of to_env's project (gcp.project_id's labels are
            # not written: to_env's service account only reads there).
            model = self._into(to_env, model, approval="approved")
            if (model.labels or {}).get("approval") == "rejected":
                raise StageFailed(f"promote: version {self._public_version(model)} is rejected in {to_env}")
        self._set_labels(model, approval="approved")
        self._move_alias(to_env, model, remember=True)
        return self._as_model_version(self.aiplatform.Model(model.resource_name, version=str(model.version_id)))

    def rollback(self, env: str) -> ModelVersion:
        current = self._aliased(env)
        previous = (current.labels or {}).get(f"previous_{env}") if current is not None else None
        if not previous:
            raise StageFailed(f"rollback: {env} has no previous version to return to")
        # The version rolled back from is bad: reject it, so `deploy --env staging` does not pick it again.
        self._set_labels(current, approval="rejected")
        target = self.aiplatform.Model(current.resource_name, version=str(previous))  # env's own registry
        self._move_alias(env, target, remember=False)
        if self._endpoint(env) is not None:
            self.deploy(env)
        return self._as_model_version(self.aiplatform.Model(current.resource_name, version=str(previous)))

    # -- endpoints ---------------------------------------------------------------------------------
    def _endpoint_name(self, env: str) -> str:
        return f"{self.config.model.name}-{env}"

    def _endpoint(self, env: str, create: bool = False):
        name = self._endpoint_name(env)
        found = self.aiplatform.Endpoint.list(filter=f'display_name="{name}"', order_by="create_time",
                                              project=self.project(env), location=self.gcp.region)
        if found:
            return found[0]
        if not create:
            return None
        from . import monitor

        capture = monitor.logging_config(self.config, env)
        return self.aiplatform.Endpoint.create(
            display_name=name, labels={"environment": _label(env), "managed_by": "mlops-gen"}, sync=True,
            project=self.project(env), location=self.gcp.region,
            enable_request_response_logging=capture.enabled,
            request_response_logging_sampling_rate=capture.sampling_rate if capture.enabled else None,
            request_response_logging_bq_destination_table=(
                capture.bigquery_destination.output_uri if capture.enabled else None),
        )

    def _ensure_capture(self, env: str, endpoint) -> None:
        """Request-response logging as mlops.yaml says now (capture_percent may have changed)."""
        from google.cloud.aiplatform_v1 import Endpoint as GapicEndpoint
        from google.protobuf import field_mask_pb2

        from . import monitor

        wanted = monitor.logging_config(self.config, env)
        if endpoint.gca_resource.predict_request_response_logging_config == wanted:
            return
        endpoint.api_client.update_endpoint(
            endpoint=GapicEndpoint(name=endpoint.resource_name, predict_request_response_logging_config=wanted),
            update_mask=field_mask_pb2.FieldMask(paths=["predict_request_response_logging_config"]),
        )

    def _instances(self, model) -> list:
        """Rows to smoke-test with: this build's sample, or the one registered with the version."""
        sample = self.artifacts / "sample.json"
        if not sample.exists():
            self._download_file(f"{model.uri}/sample.json", sample)
            self._download_file(f"{model.uri}/model.json", self.artifacts / "model" / "model.json")
        return json.loads(sample.read_text())["instances"]

    def _canary(self, endpoint, deployed_id: str, instances: list, share: int) -> None:
        wanted = self.config.smoke.requests
        attempts = min(500, math.ceil(wanted * 100 / share) * 4)
        answered = 0
        for _ in range(attempts):
            response = endpoint.predict(instances=instances, timeout=60)
            if response.deployed_model_id != deployed_id:
                continue
            if len(response.predictions) != len(instances):
                raise StageFailed(
                    f"canary: expected {len(instances)} predictions, got {str(response.predictions)[:200]}"
                )
            answered += 1
            if answered >= wanted:
                return
        raise StageFailed(
            f"canary: the new deployment answered {answered} of {wanted} requests in {attempts}"
        )

    def _due(self, env: str):
        if self.config.environment(env).approval_required:
            model = self._aliased(env)
            if model is None:
                raise StageFailed(f"deploy: {env} needs an approved version; run `promote --to {env}` first")
            return model
        return self._newest_deployable(env)

    def _runtime_account(self, env: str) -> str:
        """The identity of env's endpoint: gcp.service_account, or its project's vertex-runner (multi)."""
        if self._isolated(env):
            return f"vertex-runner@{self.project(env)}.iam.gserviceaccount.com"
        return self.gcp.service_account

    # -- the serving contract ---------------------------------------------------------------------
    def fetch_model(self, version: str, dest: Path) -> Path | None:
        model = self._version(version)
        for name in BUNDLE_FILES:
            self._download_file(f"{model.uri}/{name}", dest / name)
        for name in OPTIONAL_FILES:
            self._download_optional(f"{model.uri}/{name}", dest / name)
        return dest

    def serving_version(self, env: str) -> str | None:
        endpoint = self._endpoint(env)
        if endpoint is None:
            return None
        full = [d for d in endpoint.list_models() if endpoint.traffic_split.get(d.id) == 100]
        if not full:
            return None
        if self._isolated(env):  # a copy: the version number of gcp.project_id
            return self._public_version(self.aiplatform.Model(full[0].model, version=full[0].model_version_id))
        return str(full[0].model_version_id)

    def due_version(self, env: str) -> str | None:
        return self._public_version(self._due(env))

    def deploy(self, env: str, version: str | None = None) -> Deployment:
        self.check_framework("deploy")
        if version is None:
            model = self._due(env)
        else:
            model = (self._copy_of(env, str(version)) if self._isolated(env) else None) or self._version(str(version))
            self.check_deployable(env, str(version), (model.labels or {}).get("approval"))
        model = self._into(env, model)  # isolation: multi: a version of env's own project
        settings = self.gcp.environment(env)
        endpoint = self._endpoint(env, create=True)
        self._ensure_capture(env, endpoint)
        serving = endpoint.list_models()
        for deployed in serving:
            same = deployed.model == model.resource_name and deployed.model_version_id == model.version_id
            if same and endpoint.traffic_split.get(deployed.id) == 100:
                return self._deployed(env, endpoint, model)  # already serving
        instances = self._instances(model)
        share = settings.canary_percent if serving else 100
        endpoint.deploy(
            model,
            deployed_model_display_name=f"{self.config.model.name}-v{model.version_id}",
            traffic_percentage=share,
            machine_type=settings.machine_type,
            min_replica_count=settings.min_replicas,
            max_replica_count=settings.max_replicas,
            service_account=self._runtime_account(env),
            deploy_request_timeout=self.gcp.deploy_timeout_minutes * 60,
            sync=True,
        )
        old = {d.id for d in serving}
        new_id = next(d.id for d in endpoint.list_models() if d.id not in old)
        if old:
            from google.api_core import exceptions

            try:
                self._canary(endpoint, new_id, instances, share)
            except (StageFailed, exceptions.GoogleAPIError) as exc:
                endpoint.undeploy(new_id)  # the old version takes its traffic back
                raise StageFailed(
                    f"deploy: canary of version {model.version_id} failed, rolled back: {exc}"
                ) from None
            endpoint.update(traffic_split={new_id: 100})
            for deployed_id in old:
                endpoint.undeploy(deployed_id)
        return self._deployed(env, endpoint, model)

    def _deployed(self, env: str, endpoint, model) -> Deployment:
        """The alias follows what the endpoint serves: moved only once the version took all traffic."""
        self._move_alias(env, model, remember=True)
        return Deployment(env, endpoint.resource_name, self._public_version(model))

    def invoke(self, env: str, instances: list) -> list:
        endpoint = self._endpoint(env)
        if endpoint is None:
            raise StageFailed(f"{env} has no Vertex AI endpoint; run `deploy --env {env}` first")
        from google.api_core import exceptions

        try:
            return list(endpoint.predict(instances=instances, timeout=60).predictions)
        except exceptions.GoogleAPIError as exc:
            raise StageFailed(f"{endpoint.resource_name} answered: {exc}") from None

    def undeploy(self, env: str) -> None:
        endpoint = self._endpoint(env)
        if endpoint is not None:
            endpoint.undeploy_all()

    # -- operate: Vertex AI Model Monitoring ------------------------------------------------------
    @property
    def jobs(self):
        """The GAPIC job service client (Model Monitoring v1 jobs live there)."""
        if self._jobs is None:
            from google.cloud.aiplatform_v1 import JobServiceClient

            self._jobs = JobServiceClient(
                credentials=self.credentials,
                client_options={"api_endpoint": f"{self.gcp.region}-aiplatform.googleapis.com"})
        return self._jobs

    def _monitoring_job(self, endpoint_name: str):
        """The monitoring job of an endpoint (Vertex AI allows one; in the endpoint's project), or None."""
        from google.cloud import aiplatform_v1 as v1

        parent = f"projects/{endpoint_name.split('/')[1]}/locations/{self.gcp.region}"
        found = self.jobs.list_model_deployment_monitoring_jobs(
            request=v1.ListModelDeploymentMonitoringJobsRequest(parent=parent))
        return next((job for job in found if job.endpoint == endpoint_name), None)

    def setup_monitoring(self, env: str, version: str, baseline_dir: Path) -> dict | None:
        from google.cloud import aiplatform_v1 as v1

        from . import monitor

        if self.config.capture_percent(env) == 0:
            return {"skipped": f"monitoring.capture_percent.{env} is 0: nothing is logged to monitor"}
        endpoint = self._endpoint(env)
        if endpoint is None:
            raise StageFailed(f"monitoring: {env} has no Vertex AI endpoint; run `deploy --env {env}` first")
        baseline = json.loads((baseline_dir / "baseline.json").read_text())
        prefix = f"gs://{self.gcp.bucket}/monitoring/{self.config.model.name}-{env}"
        training_csv, schema_uri = f"{prefix}/v{version}/baseline.csv", f"{prefix}/v{version}/instance_schema.yaml"
        self._upload_file(baseline_dir / "baseline.csv", training_csv)
        with tempfile.TemporaryDirectory() as tmp:
            schema = Path(tmp) / "instance_schema.yaml"
            schema.write_text(monitor.instance_schema(baseline))
            self._upload_file(schema, schema_uri)
        sample = self.artifacts / "sample.json"
        job = monitor.build_job(
            self.config, env, endpoint=endpoint.resource_name, version=version,
            deployed_model_ids=[d.id for d in endpoint.list_models()], baseline=baseline,
            training_csv=training_csv, schema_uri=schema_uri, output_uri=f"{prefix}/stats",
            sample=json.loads(sample.read_text())["instances"][0] if sample.exists() else None,
        )
        existing = self._monitoring_job(endpoint.resource_name)
        timeout = self.gcp.deploy_timeout_minutes * 60
        if existing is None:
            parent = f"projects/{self.project(env)}/locations/{self.gcp.region}"
            name = self.jobs.create_model_deployment_monitoring_job(
                request=v1.CreateModelDeploymentMonitoringJobRequest(
                    parent=parent, model_deployment_monitoring_job=job)).name
        else:
            job.name = name = existing.name
            self.jobs.update_model_deployment_monitoring_job(
                request=v1.UpdateModelDeploymentMonitoringJobRequest(
                    model_deployment_monitoring_job=job, update_mask=monitor.update_mask())).result(timeout=timeout)
        objective = job.model_deployment_monitoring_objective_configs[0].objective_config
        return {
            "job": name, "action": "updated" if existing else "created",
            "capture": monitor.capture_table(self.config, env), "training_data": training_csv,
            "thresholds": {k: v.value for k, v in
                           objective.training_prediction_skew_detection_config.skew_thresholds.items()},
            "every_hours": self.gcp.monitor_interval_hours, "email": self.config.alerts.email or None,
        }

    def latest_monitor_result(self, env: str) -> MonitorResult | None:
        from . import monitor

        endpoint = self._endpoint(env)
        job = self._monitoring_job(endpoint.resource_name) if endpoint is not None else None
        if job is None:
            return MonitorResult(env=env, status="no_result", source="Vertex AI Model Monitoring", notes=[
                f"{env} has no Vertex AI monitoring job yet: `deploy --target gcp --env {env}` sets it up"])
        job_id = job.name.rsplit("/", 1)[-1]
        console = (f"https://console.cloud.google.com/vertex-ai/locations/{self.gcp.region}/model-monitoring/"
                   f"model-deployment-monitoring-jobs/{job_id}?project={self.project(env)}")
        answers = []
        for deployed in endpoint.list_models():
            answers += list(self.jobs.search_model_deployment_monitoring_stats_anomalies(
                request=monitor.search_request(job.name, deployed.id)))
        return monitor.to_result(env, self.serving_version(env), job, answers, console)

    # -- batch: a Vertex AI batch prediction job (batch.py) -----------------------------------------
    def batch_job(self, version: str, source: str, output: str) -> dict:
        from . import batch

        return batch.run(self, version, source, output)

    # -- Vertex AI Pipelines -----------------------------------------------------------------------
    def _pipeline_record(self) -> dict | None:
        path = self.artifacts / PIPELINE_RECORD
        return json.loads(path.read_text()) if path.exists() else None

    def pipeline_definition(self) -> dict:
        import yaml

        from . import vertex

        with tempfile.TemporaryDirectory() as folder:
            path = vertex.compile_to(self.config, self.root, Path(folder) / "pipeline.yaml")
            return yaml.safe_load(path.read_text())

    def _source_archive(self) -> bytes:
        """src/<package>, mlops.yaml, a relative data file and a manifest: what the components run."""
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
            package_dir = Path(__file__).resolve().parents[2]
            archive.add(package_dir, arcname=PACKAGE, filter=lambda i: None if "__pycache__" in i.name else i)
            config_file = self.config.root / "mlops.yaml"
            archive.add(config_file, arcname="mlops.yaml")
            source = self.config.data.source
            if not source.startswith("sklearn:") and "://" not in source:
                archive.add(self.config.root / source, arcname=source)
            manifest = json.dumps({"package": PACKAGE}).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(manifest)
            archive.addfile(info, io.BytesIO(manifest))
        return buffer.getvalue()

    def train(self, artifacts: Path) -> bool:
        if self.gcp.training == "in_step":
            return False
        self.check_framework("train")
        from ...stages import git_commit
        from . import vertex

        commit = git_commit(self.root)
        spec = vertex.compile_to(self.config, self.root, artifacts / "pipeline" / "pipeline.yaml")
        archive = self._source_archive()
        source_uri = (
            f"gs://{self.gcp.bucket}/sources/{self.config.model.name}/"
            f"{hashlib.sha256(archive).hexdigest()[:16]}.tar.gz"
        )
        local_archive = artifacts / "pipeline" / "source.tar.gz"
        local_archive.write_bytes(archive)
        self._upload_file(local_archive, source_uri)
        job = self.aiplatform.PipelineJob(
            display_name=f"{self.config.model.name}-train",
            template_path=str(spec),
            pipeline_root=self.gcp.root,
            parameter_values={"source_uri": source_uri, "git_commit": commit, "approved": False,
                              "model_image": self.serving_image() or ""},
            enable_caching=False,
            labels={"git_commit": _label(commit), "managed_by": "mlops-gen"},
        )
        job.submit(service_account=self.gcp.service_account)
        deadline = time.monotonic() + self.gcp.pipeline_timeout_minutes * 60
        while job.state.name not in _DONE:
            if time.monotonic() > deadline:
                job.cancel()
                raise StageFailed(
                    f"train: Vertex AI pipeline {job.resource_name} did not finish within "
                    f"gcp.pipeline_timeout_minutes={self.gcp.pipeline_timeout_minutes}; cancelled"
                )
            time.sleep(20)
        if job.state.name != "PIPELINE_STATE_SUCCEEDED":
            raise StageFailed(
                f"train: Vertex AI pipeline {job.resource_name} ended {job.state.name}: "
                f"{job.gca_resource.error}"
            )
        tasks = {task.task_name: task for task in job.task_details}
        model_uri = tasks[vertex.TRAIN_TASK].outputs["model"].artifacts[0].uri
        for name in BUNDLE_FILES:
            self._download_file(f"{model_uri}/{name}", artifacts / "model" / name)
        uploaded = tasks.get(vertex.UPLOAD_TASK)
        version = None
        if uploaded is not None and uploaded.outputs.get("vertex_model"):
            version = uploaded.outputs["vertex_model"].artifacts[0].metadata.get("version")
        (artifacts / PIPELINE_RECORD).write_text(json.dumps(
            {"job": job.resource_name, "model_uri": model_uri, "model_version": version}, indent=2
        ) + "\n")
        return True


TARGET = GcpTarget
