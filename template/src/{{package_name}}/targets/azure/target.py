"""The `azure` target on Azure Machine Learning, SDK v2 (azure-ai-ml).

- train:    a command job (code, environment, compute from mlops.yaml) on the workspace's cluster;
            waits at most `azure.train_timeout_minutes`, cancels the job and fails on timeout, and
            downloads the `model` output into artifacts/model.
- registry: model versions of `model.name`, metrics and lineage as properties (immutable) and tags;
            the tag `status` holds Approved / PendingManualApproval / Rejected, and `due.<env>` the
            time a version became the one due in <env> (the newest is current; rollback drops it).
- deploy:   one managed online endpoint per environment (`azure.deployments`). Blue/green: the new
            deployment is created beside the live one with no traffic, smoke-tested directly, and
            only then takes 100% of the traffic; the old deployment is removed afterwards.
            A failed smoke deletes the new deployment and leaves traffic where it was.
            serving.mode image: `register` records the image CI built (MODEL_IMAGE, in the workspace's
            Azure Container Registry) as the version's tag and property `image`, and every deploy of
            that version runs exactly that image as a custom container (ml.serving_environment).
- invoke:   HTTPS to the endpoint's scoring URI with its key (fetched at run time, never stored).
- batch:    the model's batch endpoint (azure.batch.endpoint, created when missing) and a model deployment
            per version running batch_score.py, invoked on a URI file or folder into a datastore folder,
            waited for at most azure.batch.timeout_minutes. Bad rows: before submitting, the runner reads
            the input and applies the local engine's row checks; above batch.max_reject_rate nothing is
            submitted (exit 1). The job applies the same checks and writes the rejects beside each scores file.
- monitor:  deployments collect their inputs and outputs (monitoring.capture_percent); after each
            deploy (and rollback) the environment's Azure ML monitor schedule follows the live
            deployment and the serving version's reference data (monitor.py), and `monitor` reads
            the newest finished run's signal outputs.

isolation: multi (environments.<env>.azure_subscription_id, _resource_group, _workspace): staging and prod
each live in a workspace of their own subscription. `register` registers in this (the tooling) workspace
and copies the version into the Azure ML registry (azure.registry); each environment's workspace keeps a
release record per version (same name and number; tags: its due/rolled-back state and `source.*`, where the
version came from) and its deployments serve the registry version. promote, deploy and rollback are the
same commands; each deploy stage signs in with its environment's service connection.

Credentials: DefaultAzureCredential, i.e. the az CLI login of the pipeline's workload-identity
service connection (AzureCLI@2), or your own `az login`. No key or secret is kept anywhere.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from azure.ai.ml import MLClient
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import Model
from azure.ai.ml.exceptions import JobException
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from ... import stages
from ...errors import ConfigError, StageFailed
from ..base import Deployment, ModelVersion, MonitorResult, Target
from . import batch as azure_batch
from . import batch_input
from . import ml as azure_ml
from . import monitor as azure_monitor

DONE, FAILED = "Completed", ("Failed", "Canceled", "NotResponding")
SLOTS = ("blue", "green")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class _Pinned:
    """The target as seen by the smoke stage, with every request sent to one deployment."""

    def __init__(self, target: AzureTarget, deployment: str):
        self.target, self.deployment = target, deployment

    def invoke(self, env: str, instances: list) -> list:
        return self.target.invoke(env, instances, deployment=self.deployment)

    def previous_sample(self, env: str) -> list | None:
        return None  # the deployment under test is new: what it replaced is checked after the switch


class AzureTarget(Target):
    name = "azure"
    poll_seconds = 30.0

    def __init__(self, config, root: Path, client: MLClient | None = None,
                 clients: dict[str, MLClient] | None = None, registry: MLClient | None = None):
        super().__init__(config, root)
        self.settings = config.azure
        missing = [env for env in config.environments if env not in self.settings.deployments]
        if missing:
            raise ConfigError(
                f"mlops.yaml: azure.deployments: no endpoint for environment(s) {', '.join(missing)}"
            )
        self._client = client
        self._clients = dict(clients or {})  # isolated environment -> the MLClient of its workspace
        self._registry = registry
        self._environment_ids: dict[int, str] = {}  # per workspace client
        self._scoring: dict[str, tuple[str, str]] = {}

    # -- connection -------------------------------------------------------------------------------
    def _subscription(self) -> str:
        if self.settings.subscription_id:
            return self.settings.subscription_id
        if os.environ.get("AZURE_SUBSCRIPTION_ID"):
            return os.environ["AZURE_SUBSCRIPTION_ID"]
        try:
            return subprocess.run(
                ["az", "account", "show", "--query", "id", "-o", "tsv"],
                capture_output=True, text=True, check=True,
            ).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            raise ConfigError(
                "mlops.yaml: azure.subscription_id: not set, AZURE_SUBSCRIPTION_ID is empty and "
                "`az account show` failed; run `az login` or set one of them"
            ) from None

    @property
    def client(self) -> MLClient:
        if self._client is None:
            from azure.identity import DefaultAzureCredential

            self._client = MLClient(
                DefaultAzureCredential(), self._subscription(), self.settings.resource_group,
                self.settings.workspace,
            )
        return self._client

    # -- where each environment lives (isolation: multi) --------------------------------------------
    def _isolated(self, env: str) -> bool:
        return bool(self.config.environment(env).azure_subscription_id)

    def _multi(self) -> bool:
        return any(self._isolated(env) for env in self.config.environments)

    def _ws(self, env: str) -> MLClient:
        """The workspace of `env`'s endpoint and release records: its own (environments.<env>.azure_*) or,
        in a single render, the workspace of azure.workspace."""
        if not self._isolated(env):
            return self.client
        if env not in self._clients:
            from azure.identity import DefaultAzureCredential

            where = self.config.environment(env)
            self._clients[env] = MLClient(
                DefaultAzureCredential(), where.azure_subscription_id,
                where.azure_resource_group or self.settings.resource_group, where.azure_workspace,
            )
        return self._clients[env]

    @property
    def registry(self) -> MLClient:
        """The Azure ML registry between the workspaces (isolation: multi)."""
        if self._registry is None:
            from azure.identity import DefaultAzureCredential

            self._registry = MLClient(DefaultAzureCredential(), registry_name=self.settings.registry_name())
        return self._registry

    def _model_ref(self, env: str, model: Model) -> str:
        """What `env`'s deployment serves: the registry version when `env` is isolated."""
        if self._isolated(env):
            return f"azureml://registries/{self.settings.registry_name()}/models/{model.name}/versions/{model.version}"
        return f"azureml:{model.name}:{model.version}"

    def _wait(self, poller, minutes: int, what: str):
        try:
            result = poller.result(timeout=minutes * 60)
        except HttpResponseError as exc:
            raise StageFailed(f"{what} failed: {exc.message}") from None
        if not poller.done():
            raise StageFailed(f"{what} did not finish within {minutes} minutes")
        return result

    def _ensure_environment(self, client: MLClient, env) -> str:
        try:
            client.environments.get(env.name, version=env.version)
        except ResourceNotFoundError:
            client.environments.create_or_update(env)
        return f"azureml:{env.name}:{env.version}"

    def environment_id(self, client: MLClient | None = None) -> str:
        """The content-versioned environment, created once per workspace; unchanged dependencies reuse its image."""
        client = client or self.client
        if id(client) not in self._environment_ids:
            self._environment_ids[id(client)] = self._ensure_environment(
                client, azure_ml.environment(self.config, self.root))
        return self._environment_ids[id(client)]

    def serving_environment_id(self, env: str, model: Model) -> str:
        """The environment `model` is served in, in `env`'s workspace: the image it was registered with
        (serving.mode image), else the content-versioned conda environment with score.py."""
        if self.config.serving.mode != "image":
            return self.environment_id(self._ws(env))
        image = (model.properties or {}).get("image") or (model.tags or {}).get("image")
        if not image:
            raise StageFailed(
                f"deploy: version {model.version} of {model.name} was registered without an image (serving.mode "
                "was prebuilt then); serving.mode image deploys only versions registered with MODEL_IMAGE")
        return self._ensure_environment(self._ws(env), azure_ml.serving_environment(self.config, image))

    # -- training ---------------------------------------------------------------------------------
    def train(self, artifacts: Path) -> bool:
        job = azure_ml.train_job(
            self.config, self.root, self.environment_id(), tags={"git_commit": stages.git_commit(self.root)}
        )
        submitted = self.client.jobs.create_or_update(job, experiment_name=self.settings.experiment)
        print(f"azure: submitted command job {submitted.name}: {submitted.studio_url}", flush=True)
        self._wait_job(submitted.name, submitted.studio_url, "train", "azure.train_timeout_minutes",
                       self.settings.train_timeout_minutes)
        with tempfile.TemporaryDirectory() as tmp:
            self.client.jobs.download(submitted.name, download_path=tmp, output_name="model")
            bundle = Path(tmp) / "named-outputs" / "model"
            if not (bundle / "model.joblib").is_file():
                raise StageFailed(f"train: job {submitted.name} completed without model/model.joblib")
            shutil.rmtree(artifacts / "model", ignore_errors=True)
            shutil.copytree(bundle, artifacts / "model")
        (artifacts / "azureml-job.json").write_text(
            json.dumps({"name": submitted.name, "studio_url": submitted.studio_url}, indent=2) + "\n"
        )
        return True

    def _wait_job(self, name: str, url: str | None, stage: str, setting: str, minutes: int) -> str:
        """Polls the job until it ends; cancels it past `minutes`. A failed job fails the stage with the
        job's own error (jobs.stream raises it for a finished job)."""
        deadline, last = time.monotonic() + minutes * 60, None
        while True:
            status = self.client.jobs.get(name).status
            if status != last:
                print(f"azure: job {name}: {status}", flush=True)
                last = status
            if status == DONE:
                return status
            if status in FAILED:
                raise StageFailed(f"{stage}: Azure ML job {name} ended {status}{self._job_error(name)}; logs: {url}")
            if time.monotonic() >= deadline:
                self.client.jobs.begin_cancel(name)
                raise StageFailed(
                    f"{stage}: Azure ML job {name} still {status} after {setting}={minutes}; cancelled ({url})"
                )
            time.sleep(self.poll_seconds)

    def _job_error(self, name: str) -> str:
        try:
            self.client.jobs.stream(name)
        except (JobException, HttpResponseError) as exc:  # JobException carries the job's error as JSON
            text = getattr(exc, "message", None) or str(exc)
            try:
                error = json.loads(text[text.index("{"):])
                text = f"{error.get('code', 'error')}: {error.get('message', text)}"
            except ValueError:
                pass
            return f": {' '.join(text.split())[:2000]}"
        return ""

    # -- registry ---------------------------------------------------------------------------------
    def _models(self, client: MLClient | None = None) -> list[Model]:
        try:
            found = list((client or self.client).models.list(name=self.config.model.name))
        except ResourceNotFoundError:
            return []
        return sorted(found, key=lambda m: int(m.version))

    def _model(self, version: str, env: str | None = None) -> Model:
        """A version: in this workspace, or for an isolated `env` its release record there, else the
        registry version."""
        name = self.config.model.name
        places = [self._ws(env), self.registry] if env and self._isolated(env) else [self.client]
        for client in places:
            try:
                return client.models.get(name, version=str(version))
            except ResourceNotFoundError:
                continue
        raise StageFailed(f"azure registry: no version {version} of model {name}") from None

    @staticmethod
    def _as_model_version(model: Model) -> ModelVersion:
        metrics = json.loads((model.properties or {}).get("metrics", "{}"))
        return ModelVersion(str(model.version), metrics, (model.tags or {}).get("status", "Registered"), model.id or "")

    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion:
        job_file = model_dir.parent / "azureml-job.json"
        path = str(model_dir)
        if lineage.get("trained_on") == self.name and job_file.is_file():
            # The bundle came out of the training job: register the job's output, which links the two.
            path = f"azureml://jobs/{json.loads(job_file.read_text())['name']}/outputs/model"
        metric_values = {f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()}
        # serving.mode image: the image CI built for this commit; a property (immutable) and a tag (shown).
        image = {"image": str(lineage["image"])} if lineage.get("image") else {}
        # isolation: multi: where the version was registered, carried into the registry with it.
        source = self._registered_in() if self._multi() else {}
        model = Model(
            name=self.config.model.name,
            path=path,
            type=AssetTypes.CUSTOM_MODEL,
            description=f"{self.config.model.estimator} on {self.config.data.source}",
            tags={"status": "Approved" if approved else "PendingManualApproval",
                  "git_commit": str(lineage.get("git_commit", "unknown")), **metric_values, **image, **source},
            properties={"metrics": json.dumps(metrics, sort_keys=True),
                        "lineage": json.dumps(lineage, sort_keys=True, default=str), **metric_values, **image,
                        **source},
        )
        registered = self.client.models.create_or_update(model)
        if self._multi():
            # Copied into the registry, same name and number (Azure ML copies the files; the copy is
            # immutable): the documented workspace-to-registry share.
            self.client.models.share(registered.name, str(registered.version), share_with_name=registered.name,
                                     share_with_version=str(registered.version),
                                     registry_name=self.settings.registry_name())
        return self._as_model_version(registered)

    def _registered_in(self) -> dict:
        subscription = getattr(self.client, "subscription_id", None) or self._subscription()
        return {"source.workspace": self.settings.workspace, "source.subscription": subscription}

    def _source(self, model: Model) -> dict:
        """Where an isolated environment's version came from: the registry, and the workspace and subscription
        it was registered in (its `source.*` properties, which the registry copy carries)."""
        recorded = {**(model.tags or {}), **(model.properties or {})}
        return {"registry": self.settings.registry_name(),
                **{key: recorded.get(f"source.{key}", "") for key in ("workspace", "subscription")},
                "version": str(model.version)}

    def _record(self, env: str, model: Model) -> Model:
        """isolation: multi — `env`'s release record of a registry version, created on first use: a model
        of the same name and number in `env`'s workspace whose only file is source.json (the version's files
        stay in the registry, which the deployments serve) and whose tags carry `env`'s state."""
        client = self._ws(env)
        try:
            return client.models.get(model.name, version=str(model.version))
        except ResourceNotFoundError:
            pass
        source = self._source(model)
        keep = {k: v for k, v in (model.tags or {}).items() if not k.startswith(("due.", "rolled_back.", "source."))}
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "release"
            folder.mkdir()
            (folder / "source.json").write_text(json.dumps(source, indent=2) + "\n")
            record = Model(
                name=model.name, version=str(model.version), path=str(folder), type=AssetTypes.CUSTOM_MODEL,
                description=f"Release record of {self._model_ref(env, model)}, which {env} serves",
                tags={**keep, **{f"source.{k}": v for k, v in source.items()}},
                properties={**(model.properties or {}), **{f"source.{k}": v for k, v in source.items()}},
            )
            return client.models.create_or_update(record)

    def _history(self, env: str) -> list[Model]:
        """Versions that were due in env, oldest first; the last one is current."""
        key = f"due.{env}"
        return sorted((m for m in self._models(self._ws(env)) if key in (m.tags or {})), key=lambda m: m.tags[key])

    def _assign(self, env: str, model: Model) -> None:
        history = self._history(env)
        if history and history[-1].version == model.version:
            return
        record = self._record(env, model) if self._isolated(env) else model
        record.tags[f"due.{env}"] = _now()
        self._ws(env).models.create_or_update(record)

    def champion(self) -> ModelVersion | None:
        history = self._history("prod")
        if history:
            return self._as_model_version(history[-1])
        approved = [m for m in self._models() if (m.tags or {}).get("status") == "Approved"]
        return self._as_model_version(approved[-1]) if approved else None

    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        isolated = self._isolated(to_env)
        if version is None:
            if isolated:  # the identity of to_env sees its own workspace and the registry, not staging's
                raise StageFailed(f"promote --to {to_env}: {to_env} is in a subscription of its own; name the "
                                  "version with --version or --release artifacts/smoked-staging.json")
            staging = self._history("staging")
            if not staging:
                raise StageFailed("promote: nothing is deployed to staging; name a version with --version")
            version = staging[-1].version
        model = self._model(version, to_env)
        if model.tags.get("status") == "Rejected":
            raise StageFailed(f"promote: version {version} is Rejected")
        if isolated:
            model = self._record(to_env, model)
        model.tags["status"] = "Approved"
        model.tags[f"due.{to_env}"] = _now()
        promoted = self._as_model_version(self._ws(to_env).models.create_or_update(model))
        if isolated:
            promoted.source = self._source(model)
        return promoted

    def rollback(self, env: str) -> ModelVersion:
        history = self._history(env)
        if len(history) < 2:
            raise StageFailed(f"rollback: {env} has no previous version to return to")
        current, previous = history[-1], history[-2]
        del current.tags[f"due.{env}"]
        current.tags[f"rolled_back.{env}"] = _now()
        self._ws(env).models.create_or_update(current)
        if self._endpoint(env) is not None:
            self._deploy(env, previous)
            self._follow_with_monitor(env, previous.version)
        return self._as_model_version(previous)

    def _follow_with_monitor(self, env: str, version: str) -> None:
        """After a rollback the monitor watches the restored deployment against its version's data."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.fetch_model(version, Path(tmp))
            if folder is not None and (folder / "baseline.csv").is_file():
                self.setup_monitoring(env, str(version), folder)

    # -- the serving contract ---------------------------------------------------------------------
    def fetch_model(self, version: str, dest: Path) -> Path | None:
        # isolation: multi: from the registry, which every identity of the pipeline may read.
        client = self.registry if self._multi() else self.client
        client.models.download(self.config.model.name, version=str(version), download_path=str(dest))
        found = sorted(dest.rglob("model.json"))  # the SDK nests the files under the model's name
        return found[0].parent if found else None

    def serving_version(self, env: str) -> str | None:
        history = self._history(env)
        return history[-1].version if history and self._endpoint(env) is not None else None

    def due_version(self, env: str) -> str | None:
        return self._version_for(env, assign=False).version

    # -- deployments ------------------------------------------------------------------------------
    def _version_for(self, env: str, assign: bool = True) -> Model:
        if self.config.environment(env).approval_required:
            history = self._history(env)
            if not history:
                raise StageFailed(f"deploy: {env} needs an approved version; run `promote` first")
            return history[-1]
        # Newest version neither rejected nor rolled back from this environment (an isolated environment
        # takes them from the registry; what it rolled back is in its release records).
        versions = self._models(self.registry if self._isolated(env) else self.client)
        rolled = {m.version for m in self._models(self._ws(env)) if f"rolled_back.{env}" in (m.tags or {})}
        candidates = [m for m in versions if (m.tags or {}).get("status") != "Rejected" and m.version not in rolled]
        if not candidates:
            raise StageFailed("deploy: the registry holds no version; run `register` first")
        if assign:
            self._assign(env, candidates[-1])
        return candidates[-1]

    def _endpoint(self, env: str):
        try:
            return self._ws(env).online_endpoints.get(self.settings.deployments[env].endpoint)
        except ResourceNotFoundError:
            return None

    def deploy(self, env: str, version: str | None = None) -> Deployment:
        if version is None:
            return self._deploy(env, self._version_for(env))
        model = self._model(str(version), env)
        self.check_deployable(env, str(version), (model.tags or {}).get("status"))
        self._assign(env, model)
        return self._deploy(env, model)

    def _deploy(self, env: str, model: Model) -> Deployment:
        environment = self.serving_environment_id(env, model)  # image mode: no image recorded fails here, first
        minutes = self.settings.deploy_timeout_minutes
        name = self.settings.deployments[env].endpoint
        endpoint = self._endpoint(env)
        if endpoint is None:
            endpoint = self._wait(
                self._ws(env).online_endpoints.begin_create_or_update(azure_ml.endpoint(self.config, env)),
                minutes, f"deploy: creating endpoint {name}",
            )
        live = {slot: share for slot, share in (endpoint.traffic or {}).items() if share}
        current = max(live, key=live.get) if live else None
        new = SLOTS[1] if current == SLOTS[0] else SLOTS[0]
        existing = {d.name for d in self._ws(env).online_deployments.list(endpoint_name=name)}
        if new in existing:  # left over from an earlier failed attempt; it takes no traffic
            self._wait(self._ws(env).online_deployments.begin_delete(name=new, endpoint_name=name),
                       minutes, f"deploy: removing stale deployment {new}")
        spec = azure_ml.deployment(
            self.config, self.root, env, new, self._model_ref(env, model), environment
        )
        spec.tags = {"model_version": str(model.version)}
        try:
            self._wait(self._ws(env).online_deployments.begin_create_or_update(spec), minutes,
                       f"deploy: deployment {new} of version {model.version} on {name}")
            stages.probe(self.config, _Pinned(self, new), self.root, env)
        except StageFailed as exc:
            self._wait(self._ws(env).online_deployments.begin_delete(name=new, endpoint_name=name),
                       minutes, f"deploy: removing failed deployment {new}")
            kept = f"traffic stays on {current}" if current else "the endpoint serves nothing yet"
            raise StageFailed(f"{exc}; deployment {new} removed, {kept}") from None
        endpoint.traffic = {new: 100}
        self._wait(self._ws(env).online_endpoints.begin_create_or_update(endpoint), minutes,
                   f"deploy: moving traffic of {name} to {new}")
        for old in sorted(existing - {new}):
            self._wait(self._ws(env).online_deployments.begin_delete(name=old, endpoint_name=name),
                       minutes, f"deploy: removing old deployment {old}")
        self._scoring.pop(env, None)
        return Deployment(env, name, str(model.version))

    def _scoring_target(self, env: str) -> tuple[str, str]:
        if env not in self._scoring:
            endpoint = self._endpoint(env)
            if endpoint is None:
                raise StageFailed(f"{env} is not deployed on azure; run `deploy --env {env}` first")
            keys = self._ws(env).online_endpoints.get_keys(endpoint.name)
            self._scoring[env] = (endpoint.scoring_uri, keys.primary_key)
        return self._scoring[env]

    def invoke(self, env: str, instances: list, deployment: str | None = None) -> list:
        uri, key = self._scoring_target(env)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        if deployment:
            headers["azureml-model-deployment"] = deployment
        request = urllib.request.Request(
            uri, data=json.dumps({"data": instances}).encode(), headers=headers, method="POST"
        )
        where = f"{uri}" + (f" (deployment {deployment})" if deployment else "")
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise StageFailed(f"{where} answered {exc.code}: {exc.read()[:500]!r}") from None
        except (OSError, ValueError) as exc:
            raise StageFailed(f"{where} did not answer with JSON: {exc}") from None
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise StageFailed(f"{where} answered {str(answer)[:500]}")
        return answer["predictions"]

    def undeploy(self, env: str) -> None:
        if self._endpoint(env) is not None:
            self._wait(
                self._ws(env).online_endpoints.begin_delete(name=self.settings.deployments[env].endpoint),
                self.settings.deploy_timeout_minutes, f"undeploy: deleting the endpoint of {env}",
            )
        self._scoring.pop(env, None)

    # -- monitoring -------------------------------------------------------------------------------
    def _live_deployment(self, env: str) -> str:
        endpoint = self._endpoint(env)
        live = {slot: share for slot, share in ((endpoint.traffic or {}) if endpoint else {}).items() if share}
        if not live:
            raise StageFailed(f"monitor: {env} has no deployment taking traffic; deploy first")
        return max(live, key=live.get)

    def _reference(self, env: str, version: str, baseline_dir: Path) -> str:
        """The serving version's reference data asset, registered once (data asset versions are immutable)."""
        name = azure_monitor.baseline_asset_name(self.config)
        try:
            self._ws(env).data.get(name, version=str(version))
        except ResourceNotFoundError:
            with tempfile.TemporaryDirectory() as tmp:
                folder = azure_monitor.write_reference(Path(tmp) / "reference", baseline_dir, str(version))
                self._ws(env).data.create_or_update(azure_monitor.reference_asset(self.config, str(version), folder))
        return f"azureml:{name}:{version}"

    def setup_monitoring(self, env: str, version: str, baseline_dir: Path) -> dict | None:
        if self.config.capture_percent(env) == 0:
            return {"skipped": f"monitoring.capture_percent of {env} is 0: nothing is collected to monitor"}
        if self.config.serving.mode == "image":
            return {"skipped": "serving.mode image: Azure ML's model_inputs/model_outputs collections are filled by "
                               "score.py's Collector, which the image's server does not run; `monitor --input` "
                               "judges a file instead"}
        deployment = self._live_deployment(env)
        reference = self._reference(env, version, baseline_dir)
        features = [c["name"] for c in json.loads((baseline_dir / "model.json").read_text())["schema"]]
        schedule = azure_monitor.schedule(self.config, env, deployment, version, reference, features)
        self._wait(self._ws(env).schedules.begin_create_or_update(schedule), self.settings.deploy_timeout_minutes,
                   f"deploy: monitor schedule {schedule.name}")
        return {"schedule": schedule.name, "deployment": deployment, "reference_data": reference,
                "signals": sorted(schedule.create_monitor.monitoring_signals),
                "emails": [self.config.alerts.email] if self.config.alerts.email else []}

    def latest_monitor_result(self, env: str) -> MonitorResult | None:
        name = azure_monitor.schedule_name(self.config, env)
        try:
            schedule = self._ws(env).schedules.get(name)
        except ResourceNotFoundError:
            return MonitorResult(env, "no_result", source=f"azure ml monitor {name}",
                                 notes=[f"no monitor schedule {name}: `deploy --env {env}` sets it up"])
        version = (schedule.tags or {}).get("model_version")
        runs = [job for job in self._ws(env).jobs.list(scheduled_job_name=name) if job.status in azure_monitor.FINISHED]
        if not runs:
            return MonitorResult(env, "no_result", version=version, source=f"azure ml monitor {name}",
                                 notes=[f"monitor {name} has no finished run yet"])
        latest = max(runs, key=lambda job: job.creation_context.created_at)
        signals = self._signal_outputs(self._ws(env), latest.name)
        return azure_monitor.verdict(self.config, env, version, signals, latest.name, latest.status,
                                     latest.studio_url or "")

    def _signal_outputs(self, client: MLClient, run: str, depth: int = 3) -> dict[str, dict]:
        """The `signal_output` folders of a monitor run's steps (nested pipelines included), read."""
        found: dict[str, dict] = {}
        with tempfile.TemporaryDirectory() as tmp:
            pending, seen = [(run, 0)], 0
            while pending:
                name, level = pending.pop(0)
                for child in client.jobs.list(parent_job_name=name):
                    if "signal_output" in (child.outputs or {}):
                        seen += 1
                        dest = Path(tmp) / str(seen)
                        client.jobs.download(child.name, download_path=str(dest), output_name="signal_output")
                        found.update(azure_monitor.read_signals(dest))
                    elif level + 1 < depth:
                        pending.append((child.name, level + 1))
        return found

    # -- batch ----------------------------------------------------------------------------------------
    def batch_job(self, version: str, source: str, output: str) -> dict:
        inputs, outputs = azure_batch.job_io(source, output)  # a local path: exit 2 before any call
        endpoint = azure_batch.endpoint_name(self.config)
        checked = self._check_batch_rows(version, source)
        minutes = self.settings.deploy_timeout_minutes
        try:
            self.client.batch_endpoints.get(endpoint)
        except ResourceNotFoundError:
            self._wait(self.client.batch_endpoints.begin_create_or_update(azure_batch.endpoint(self.config)),
                       minutes, f"batch: creating batch endpoint {endpoint}")
        model = self._model(version)
        spec = azure_batch.deployment(self.config, self.root, version, f"azureml:{model.name}:{model.version}",
                                      self.environment_id())
        self._wait(self.client.batch_deployments.begin_create_or_update(spec), minutes,
                   f"batch: deployment {spec.name} of version {version} on {endpoint}")
        job = self.client.batch_endpoints.invoke(endpoint_name=endpoint, deployment_name=spec.name, inputs=inputs,
                                                 outputs=outputs, experiment_name=self.settings.experiment)
        print(f"azure: batch job {job.name} of version {version}: {job.studio_url}", flush=True)
        state = self._wait_job(job.name, job.studio_url, "batch", "azure.batch.timeout_minutes",
                               self.settings.batch.timeout_minutes)
        result = {"job": job.name, "state": state, "version": str(version), "endpoint": endpoint,
                  "deployment": spec.name, "input": source, "output": outputs[azure_batch.OUTPUT].path,
                  **checked, "studio_url": job.studio_url}
        if checked["rejected"]:
            result["rejects"] = f"{result['output']}/<input file name>.rejects.<ext>"
        (self.root / "artifacts").mkdir(exist_ok=True)
        (self.root / "artifacts" / "batch.json").write_text(json.dumps(result, indent=2) + "\n")
        return result

    def _check_batch_rows(self, version: str, source: str) -> dict:
        """The local engine's row checks over the input, read from storage on this machine; above
        batch.max_reject_rate the job is not submitted (exit 1)."""
        from ... import batch as batch_lib

        schema = self.schema_of(version)
        if schema is None:
            raise StageFailed(f"batch: version {version} has no model.json with its input schema")
        ids = self.config.batch_id_columns
        allowed = {c["name"] for c in schema} | set(ids) | {self.config.data.target}
        read, reasons = 0, {}
        for location in batch_lib.input_files(batch_input.readable(source, *batch_input.lookups(self.client))):
            kind = batch_lib.FORMATS[Path(location).suffix.lower()]
            for frame in batch_lib.chunks(location, kind, self.config.batch.chunk_rows, self.config.data.sep, schema):
                missing = [c for c in ids if c not in frame.columns]
                if missing:
                    raise ConfigError(f"--input {source}: id column(s) {', '.join(missing)} missing (batch.id_columns)")
                _, bad = batch_lib.check(frame, schema, allowed)
                read += len(frame)
                for reason, count in bad.value_counts().items():
                    reasons[reason] = reasons.get(reason, 0) + int(count)
        rejected = sum(reasons.values())
        rate = rejected / read if read else 0.0
        if rate > self.config.batch.max_reject_rate:
            top = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
            raise StageFailed(f"batch: {rejected} of {read} rows of {source} fail the model's schema ({rate:.2%} > "
                              f"batch.max_reject_rate {self.config.batch.max_reject_rate:.2%}): {top}. Nothing was "
                              f"submitted; `batch --target local --input <a copy>` writes every rejected row with its reason")
        return {"read": read, "scored": read - rejected, "rejected": rejected, "reject_rate": round(rate, 6),
                "reasons": reasons}

    def pipeline_definition(self) -> dict:
        return azure_ml.specs(self.config, self.root)


TARGET = AzureTarget
