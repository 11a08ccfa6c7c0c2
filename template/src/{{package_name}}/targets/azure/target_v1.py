"""The `azure` target on the legacy Azure Machine Learning SDK v1 (azureml-core).

Microsoft ended support for SDK v1 on 2026-06-30; choose v2 (`copier update --data azure_ml_sdk=v2`)
as soon as the workspace allows. Here:
- train:    an azureml-core pipeline with one PythonScriptStep (ml_v1.py) on
            `azure.compute`, waited for at most `azure.train_timeout_minutes` (cancelled after);
            the step's `model` output is downloaded into artifacts/model.
- registry: Model.register with metrics and lineage as properties and tags; tags `status` and
            `due.<env>` as in the v2 target, so promote and rollback work by version.
- deploy:   one ACI web service per model version (`<endpoint>-v<N>`): the new one is deployed and
            smoke-tested beside the live one, becomes the environment's service only then, and the
            old one is deleted. (ACI has no traffic split; the scoring URI changes per deployment.)

Every workspace call goes through `Workspace` below, which tests replace with a fake.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from ... import stages
from ...errors import ConfigError, StageFailed
from ..base import Deployment, ModelVersion, Target
from . import ml_v1 as azureml_v1

DONE, FAILED = "Finished", ("Failed", "Canceled", "NotResponding")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class Workspace:
    """The azureml-core calls of this target, against a real workspace (az CLI authentication)."""

    def __init__(self, settings):
        from azureml.core import Workspace as AmlWorkspace
        from azureml.core.authentication import AzureCliAuthentication

        subscription = settings.subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
        if not subscription:
            raise ConfigError("mlops.yaml: azure.subscription_id: set it or AZURE_SUBSCRIPTION_ID for SDK v1")
        self.ws = AmlWorkspace(subscription, settings.resource_group, settings.workspace,
                               auth=AzureCliAuthentication())

    def submit(self, step, experiment: str):
        from azureml.core import Experiment
        from azureml.pipeline.core import Pipeline

        return Experiment(self.ws, experiment).submit(Pipeline(self.ws, steps=[step]))

    def download_output(self, run, step: str, output: str, dest: Path) -> Path:
        port = run.find_step_run(step)[0].get_output_data(output)
        port.download(local_path=str(dest))
        return dest / port.path_on_datastore

    def models(self, name: str) -> list:
        from azureml.core import Model

        return Model.list(self.ws, name=name, latest=False)

    def model(self, name: str, version: str):
        from azureml.core import Model

        return Model(self.ws, name=name, version=int(version))

    def register(self, path: str, name: str, tags: dict, properties: dict, description: str):
        from azureml.core import Model

        return Model.register(self.ws, model_path=path, model_name=name, tags=tags, properties=properties,
                              description=description)

    def update_tags(self, model, add: dict, remove: list[str]) -> None:
        if add:
            model.add_tags(add)
        if remove:
            model.remove_tags(remove)

    def deploy(self, name: str, model, inference_config, deployment_config, timeout_s: int):
        from azureml.core import Model

        service = Model.deploy(self.ws, name, [model], inference_config, deployment_config, overwrite=True)
        service.wait_for_deployment(show_output=True, timeout_sec=timeout_s)
        return service

    def services(self, prefix: str) -> list:
        from azureml.core.webservice import Webservice

        return [s for s in Webservice.list(self.ws) if s.name.startswith(prefix)]

    def delete_service(self, service) -> None:
        service.delete()


class _Pinned:
    def __init__(self, target: AzureV1Target, service):
        self.target, self.service = target, service

    def invoke(self, env: str, instances: list) -> list:
        return self.target._post(self.service, instances)

    def previous_sample(self, env: str) -> list | None:
        return None  # the deployment under test is new: what it replaced is checked after the switch


class AzureV1Target(Target):
    name = "azure"
    poll_seconds = 30.0

    def __init__(self, config, root: Path, workspace: Workspace | None = None):
        super().__init__(config, root)
        self.settings = config.azure
        missing = [env for env in config.environments if env not in self.settings.deployments]
        if missing:
            raise ConfigError(f"mlops.yaml: azure.deployments: no endpoint for environment(s) {', '.join(missing)}")
        self._workspace = workspace

    @property
    def workspace(self) -> Workspace:
        if self._workspace is None:
            self._workspace = Workspace(self.settings)
        return self._workspace

    # -- training ---------------------------------------------------------------------------------
    def train(self, artifacts: Path) -> bool:
        step = azureml_v1.train_step(self.config, self.root, azureml_v1.model_output())
        run = self.workspace.submit(step, self.settings.experiment)
        print(f"azure (v1): submitted pipeline run {run.id}: {run.get_portal_url()}", flush=True)
        minutes = self.settings.train_timeout_minutes
        deadline, last = time.monotonic() + minutes * 60, None
        while True:
            status = run.get_status()
            if status != last:
                print(f"azure (v1): run {run.id}: {status}", flush=True)
                last = status
            if status == DONE:
                break
            if status in FAILED:
                raise StageFailed(f"train: pipeline run {run.id} ended {status}; logs: {run.get_portal_url()}")
            if time.monotonic() >= deadline:
                run.cancel()
                raise StageFailed(f"train: pipeline run {run.id} still {status} after "
                                  f"azure.train_timeout_minutes={minutes}; cancelled")
            time.sleep(self.poll_seconds)
        with tempfile.TemporaryDirectory() as tmp:
            bundle = self.workspace.download_output(run, "train", "model", Path(tmp))
            if not (bundle / "model.joblib").is_file():
                raise StageFailed(f"train: run {run.id} completed without model/model.joblib")
            model_dir = artifacts / "model"
            model_dir.mkdir(parents=True, exist_ok=True)
            for item in bundle.iterdir():
                (model_dir / item.name).write_bytes(item.read_bytes())
        return True

    # -- registry ---------------------------------------------------------------------------------
    def _models(self) -> list:
        return sorted(self.workspace.models(self.config.model.name), key=lambda m: int(m.version))

    @staticmethod
    def _as_model_version(model) -> ModelVersion:
        metrics = json.loads((model.properties or {}).get("metrics", "{}"))
        return ModelVersion(str(model.version), metrics, (model.tags or {}).get("status", "Registered"),
                            getattr(model, "id", "") or "")

    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion:
        metric_values = {f"metric.{k}": f"{v:.6g}" for k, v in metrics.items()}
        model = self.workspace.register(
            str(model_dir), self.config.model.name,
            tags={"status": "Approved" if approved else "PendingManualApproval",
                  "git_commit": str(lineage.get("git_commit", "unknown")), **metric_values},
            properties={"metrics": json.dumps(metrics, sort_keys=True),
                        "lineage": json.dumps(lineage, sort_keys=True, default=str), **metric_values},
            description=f"{self.config.model.estimator} on {self.config.data.source}",
        )
        return self._as_model_version(model)

    def _history(self, env: str) -> list:
        key = f"due.{env}"
        return sorted((m for m in self._models() if key in (m.tags or {})), key=lambda m: m.tags[key])

    def champion(self) -> ModelVersion | None:
        history = self._history("prod")
        if history:
            return self._as_model_version(history[-1])
        approved = [m for m in self._models() if (m.tags or {}).get("status") == "Approved"]
        return self._as_model_version(approved[-1]) if approved else None

    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        if version is None:
            staging = self._history("staging")
            if not staging:
                raise StageFailed("promote: nothing is deployed to staging; name a version with --version")
            version = staging[-1].version
        model = self.workspace.model(self.config.model.name, str(version))
        if (model.tags or {}).get("status") == "Rejected":
            raise StageFailed(f"promote: version {version} is Rejected")
        self.workspace.update_tags(model, {"status": "Approved", f"due.{to_env}": _now()}, [])
        return self._as_model_version(self.workspace.model(self.config.model.name, str(version)))

    def rollback(self, env: str) -> ModelVersion:
        history = self._history(env)
        if len(history) < 2:
            raise StageFailed(f"rollback: {env} has no previous version to return to")
        current, previous = history[-1], history[-2]
        self.workspace.update_tags(current, {f"rolled_back.{env}": _now()}, [f"due.{env}"])
        if self._live(env):
            self._deploy(env, previous)
        return self._as_model_version(previous)

    # -- deployments ------------------------------------------------------------------------------
    def _version_for(self, env: str):
        if self.config.environment(env).approval_required:
            history = self._history(env)
            if not history:
                raise StageFailed(f"deploy: {env} needs an approved version; run `promote` first")
            return history[-1]
        candidates = [m for m in self._models() if (m.tags or {}).get("status") != "Rejected"
                      and f"rolled_back.{env}" not in (m.tags or {})]
        if not candidates:
            raise StageFailed("deploy: the registry holds no version; run `register` first")
        model = candidates[-1]
        history = self._history(env)
        if not history or history[-1].version != model.version:
            self.workspace.update_tags(model, {f"due.{env}": _now()}, [])
        return model

    def _prefix(self, env: str) -> str:
        return azureml_v1.service_name(self.config, env, "").removesuffix("-v")

    def _live(self, env: str) -> list:
        return self.workspace.services(self._prefix(env) + "-v")

    def deploy(self, env: str, version: str | None = None) -> Deployment:
        if version is None:
            return self._deploy(env, self._version_for(env))
        model = self.workspace.model(self.config.model.name, str(version))
        self.check_deployable(env, str(version), (model.tags or {}).get("status"))
        history = self._history(env)
        if not history or history[-1].version != model.version:
            self.workspace.update_tags(model, {f"due.{env}": _now()}, [])
        return self._deploy(env, model)

    def _deploy(self, env: str, model) -> Deployment:
        name = azureml_v1.service_name(self.config, env, model.version)
        old = [s for s in self._live(env) if s.name != name]
        try:
            service = self.workspace.deploy(
                name, model, azureml_v1.inference_config(self.config, self.root),
                azureml_v1.deployment_config(self.config, env, model.version),
                self.settings.deploy_timeout_minutes * 60,
            )
            if service.state != "Healthy":
                raise StageFailed(f"deploy: service {name} is {service.state}")
            stages.probe(self.config, _Pinned(self, service), self.root, env)
        except StageFailed as exc:
            for service in self.workspace.services(name):
                self.workspace.delete_service(service)
            kept = f"{env} stays on {old[0].name}" if old else f"{env} serves nothing yet"
            raise StageFailed(f"{exc}; service {name} removed, {kept}") from None
        for service in old:
            self.workspace.delete_service(service)
        return Deployment(env, name, str(model.version))

    def _current_service(self, env: str):
        history = self._history(env)
        wanted = azureml_v1.service_name(self.config, env, history[-1].version) if history else None
        for service in self._live(env):
            if service.name == wanted:
                return service
        raise StageFailed(f"{env} is not deployed on azure; run `deploy --env {env}` first")

    def _post(self, service, instances: list) -> list:
        key = service.get_keys()[0]
        request = urllib.request.Request(
            service.scoring_uri, data=json.dumps({"data": instances}).encode(), method="POST",
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            raise StageFailed(f"{service.scoring_uri} answered {exc.code}: {exc.read()[:500]!r}") from None
        except (OSError, ValueError) as exc:
            raise StageFailed(f"{service.scoring_uri} did not answer with JSON: {exc}") from None
        if not isinstance(answer, dict) or "predictions" not in answer:
            raise StageFailed(f"{service.scoring_uri} answered {str(answer)[:500]}")
        return answer["predictions"]

    def invoke(self, env: str, instances: list) -> list:
        return self._post(self._current_service(env), instances)

    def undeploy(self, env: str) -> None:
        for service in self._live(env):
            self.workspace.delete_service(service)

    def pipeline_definition(self) -> dict:
        return azureml_v1.definition(self.config, self.root)


TARGET = AzureV1Target
