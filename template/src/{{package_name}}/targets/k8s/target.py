"""`--target k8s`: the model server image as a Deployment, rolled out with the official Python client.

What each operation is on a cluster:
- registry: a ConfigMap `<model>-registry` (k8s.registry_namespace) holding one record per version
  (`version-<N>.json`: image, metrics, lineage, approval, input schema, sample request) and the version
  due in each environment with the ones before it (`environments.json`). The image tag identifies the
  model: the image is built with the model baked in, tagged with the commit it was trained on.
- deploy: a strategic-merge patch of the Deployment's pod template (image, MODEL_VERSION, the version
  annotation) - a rolling update - then waiting for the rollout as `kubectl rollout status` does
  (observed generation, updated, total and available replicas, the progress deadline). A rollout that
  fails or times out is reverted to the template that served before, and deploy fails.
- invoke: HTTP to the environment's URL (an Ingress or LoadBalancer), the same /invocations contract.
- rollback: the image of the version the environment served before (what `kubectl rollout undo` does
  with the previous ReplicaSet's template), rolled out and waited for the same way.

The Deployment, Service, HorizontalPodAutoscaler and PodDisruptionBudget come from infra/k8s/
(`kubectl apply -k infra/k8s/overlays/<env>`); deploy changes the image of that Deployment only.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client
from kubernetes.client.rest import ApiException

from ...errors import ConfigError, StageFailed
from ..base import Deployment, ModelVersion, Target, invoke_http
from .settings import K8sSettings

VERSION_ANNOTATION = "mlops/model-version"
CHANGE_CAUSE = "kubernetes.io/change-cause"
ENVIRONMENTS_KEY = "environments.json"
SERIALIZER = client.ApiClient()  # serializes the client's models; never connects


@dataclass
class Apis:
    """The client's API groups the target calls, on one cluster."""

    apps: Any
    core: Any


def connect(context: str | None) -> Apis:
    """The APIs of the cluster of kubeconfig `context` (in a pod without one: its service account)."""
    from kubernetes import config as kube_config
    from kubernetes.config.config_exception import ConfigException

    try:
        if context is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
            kube_config.load_incluster_config()
            api = client.ApiClient()
        else:
            api = kube_config.new_client_from_config(context=context)
    except (ConfigException, OSError) as exc:
        raise ConfigError(f"k8s: no kubeconfig{f' context {context}' if context else ''} to reach the cluster "
                          f"({exc}); get one with aws eks update-kubeconfig, az aks get-credentials or gcloud "
                          "container clusters get-credentials (see the README)") from None
    return Apis(apps=client.AppsV1Api(api), core=client.CoreV1Api(api))


def _now() -> str:
    return datetime.now(UTC).isoformat()


class K8sTarget(Target):
    name = "k8s"
    keeps_previous_samples = True
    POLL_SECONDS = 2.0

    def __init__(self, config, root: Path, connect: Callable[[str | None], Apis] | None = None):
        super().__init__(config, root)
        if config.k8s is None:
            raise ConfigError("mlops.yaml: k8s: the section is missing; the k8s target needs it (see the README)")
        self.settings: K8sSettings = config.k8s
        # How to reach a cluster by kubeconfig context: this module's connect() unless given (tests).
        self._connect = connect or (lambda context: globals()["connect"](context))
        self._apis: dict[str | None, Apis] = {}

    # -- clusters ------------------------------------------------------------------------------------
    def _api(self, context: str | None) -> Apis:
        if context not in self._apis:
            self._apis[context] = self._connect(context)
        return self._apis[context]

    def _env(self, env: str):
        self.config.environment(env)
        if env not in self.settings.environments:
            raise ConfigError(f"mlops.yaml: k8s.environments: no environment '{env}' "
                              f"(defined: {', '.join(self.settings.environments)})")
        return self.settings.environments[env]

    def _call(self, what: str, call, *args, **kwargs):
        """A call of the client; its API errors fail the stage with the server's message."""
        try:
            return call(*args, **kwargs)
        except ApiException as exc:
            raise StageFailed(f"k8s: {what}: {exc.status} {exc.reason}: {str(exc.body)[:300]}") from None

    # -- registry: one ConfigMap ---------------------------------------------------------------------
    @property
    def _registry_name(self) -> str:
        return f"{self.config.model.name}-registry"

    def _registry(self) -> client.V1ConfigMap | None:
        core = self._api(self.settings.registry_context).core
        try:
            return core.read_namespaced_config_map(self._registry_name, self.settings.registry_namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise StageFailed(f"k8s: reading the registry ConfigMap {self.settings.registry_namespace}/"
                              f"{self._registry_name}: {exc.status} {exc.reason}") from None

    def _data(self) -> dict[str, str]:
        found = self._registry()
        return dict(found.data or {}) if found is not None else {}

    def _update(self, change) -> Any:
        """Read-modify-write of the registry: `change(data)` edits the data and returns a result. A
        concurrent writer makes the write conflict (409, resourceVersion); it is then done again."""
        core = self._api(self.settings.registry_context).core
        namespace = self.settings.registry_namespace
        for _ in range(5):
            found = self._registry()
            data = dict(found.data or {}) if found is not None else {}
            result = change(data)
            labels = {"app.kubernetes.io/part-of": self.config.model.name, "app.kubernetes.io/component": "registry"}
            body = client.V1ConfigMap(
                metadata=client.V1ObjectMeta(name=self._registry_name, namespace=namespace, labels=labels,
                                             resource_version=found.metadata.resource_version if found else None),
                data=data,
            )
            try:
                if found is None:
                    core.create_namespaced_config_map(namespace, body)
                else:
                    core.replace_namespaced_config_map(self._registry_name, namespace, body)
                return result
            except ApiException as exc:
                if exc.status != 409:
                    raise StageFailed(f"k8s: writing the registry ConfigMap {namespace}/{self._registry_name}: "
                                      f"{exc.status} {exc.reason}: {str(exc.body)[:300]}") from None
        raise StageFailed(f"k8s: the registry ConfigMap {namespace}/{self._registry_name} kept changing "
                          "under this write (5 conflicts); try again")

    @staticmethod
    def _versions(data: dict[str, str]) -> list[dict]:
        found = [json.loads(v) for k, v in data.items() if k.startswith("version-")]
        return sorted(found, key=lambda v: int(v["version"]))

    def _version(self, version: str, data: dict[str, str] | None = None) -> dict:
        data = self._data() if data is None else data
        key = f"version-{int(version):06d}.json" if str(version).isdigit() else None
        if key is None or key not in data:
            raise StageFailed(f"k8s registry: no version {version} of model {self.config.model.name}")
        return json.loads(data[key])

    @staticmethod
    def _as_model_version(record: dict) -> ModelVersion:
        return ModelVersion(str(record["version"]), record["metrics"], record["status"], record["image"])

    def serving_image(self) -> str | None:
        """The k8s target records its own image with each version (image_for: K8S_IMAGE + the commit's tag,
        the model baked in), whatever serving.mode says for the clouds."""
        return None

    def image_for(self, lineage: dict) -> str:
        repository = os.environ.get("K8S_IMAGE") or self.settings.image
        if not repository:
            raise ConfigError("mlops.yaml: k8s.image: set the image repository the CI pushes to (or K8S_IMAGE)")
        tag = os.environ.get("IMAGE_TAG") or str(lineage.get("git_commit") or "")
        if not tag or tag == "unknown":
            raise ConfigError("k8s: the image tag is unknown: set IMAGE_TAG to the tag of the image built with "
                              "this model (the CI files use the commit)")
        return f"{repository}:{tag}"

    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion:
        image = self.image_for(lineage)
        meta = json.loads((model_dir / "model.json").read_text())
        sample_file = model_dir / "sample.json"
        sample = json.loads(sample_file.read_text())["instances"] if sample_file.exists() else None

        def add(data: dict[str, str]) -> dict:
            versions = self._versions(data)
            number = int(versions[-1]["version"]) + 1 if versions else 1
            record = {"version": str(number), "image": image, "metrics": metrics, "lineage": lineage,
                      "status": "Approved" if approved else "PendingManualApproval", "created": _now(),
                      "schema": meta.get("schema"), "sample": sample}
            data[f"version-{number:06d}.json"] = json.dumps(record, default=str)
            return record

        return self._as_model_version(self._update(add))

    def _due(self, env: str, data: dict[str, str] | None = None) -> dict | None:
        data = self._data() if data is None else data
        return json.loads(data[ENVIRONMENTS_KEY]).get(env) if ENVIRONMENTS_KEY in data else None

    @staticmethod
    def _assign(data: dict[str, str], env: str, version: str) -> None:
        environments = json.loads(data.get(ENVIRONMENTS_KEY, "{}"))
        current = environments.get(env) or {"version": None, "history": []}
        if current["version"] != version:
            history = current["history"] + ([current["version"]] if current["version"] else [])
            environments[env] = {"version": version, "history": history}
            data[ENVIRONMENTS_KEY] = json.dumps(environments)

    def champion(self) -> ModelVersion | None:
        data = self._data()
        due = self._due("prod", data)
        if due and due["version"]:
            return self._as_model_version(self._version(due["version"], data))
        approved = [v for v in self._versions(data) if v["status"] == "Approved"]
        return self._as_model_version(approved[-1]) if approved else None

    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        self._env(to_env)

        def approve(data: dict[str, str]) -> dict:
            chosen = version
            if chosen is None:
                staging = self._due("staging", data)
                if not staging:
                    raise StageFailed("promote: nothing is deployed to staging; name a version with --version")
                chosen = staging["version"]
            record = self._version(chosen, data)
            if record["status"] == "Rejected":
                raise StageFailed(f"promote: version {chosen} is Rejected")
            record["status"] = "Approved"
            data[f"version-{int(record['version']):06d}.json"] = json.dumps(record, default=str)
            self._assign(data, to_env, str(record["version"]))
            return record

        return self._as_model_version(self._update(approve))

    def _version_for(self, env: str, data: dict[str, str]) -> dict:
        if self.config.environment(env).approval_required:
            due = self._due(env, data)
            if not due:
                raise StageFailed(f"deploy: {env} needs an approved version; run `promote` first")
            return self._version(due["version"], data)
        candidates = [v for v in self._versions(data) if v["status"] != "Rejected"]
        if not candidates:
            raise StageFailed("deploy: the registry holds no version; run `register` first")
        return candidates[-1]

    # -- deployments ----------------------------------------------------------------------------------
    def _deployment(self, env: str) -> client.V1Deployment | None:
        settings = self._env(env)
        try:
            return self._api(settings.context).apps.read_namespaced_deployment(
                self.settings.deployment, settings.namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise StageFailed(f"k8s: reading Deployment {settings.namespace}/{self.settings.deployment}: "
                              f"{exc.status} {exc.reason}") from None

    def _container(self, deployment: client.V1Deployment) -> client.V1Container:
        for container in deployment.spec.template.spec.containers:
            if container.name == self.settings.container:
                return container
        raise ConfigError(f"mlops.yaml: k8s.container: the Deployment {self.settings.deployment} has no container "
                          f"'{self.settings.container}' (it has: "
                          f"{', '.join(c.name for c in deployment.spec.template.spec.containers)})")

    def pod_template_patch(self, image: str, version: str) -> dict:
        """The strategic-merge patch that rolls the Deployment to `image` (containers and env merge by
        name): built from the client's models, so every field is one the API knows."""
        template = client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(annotations={VERSION_ANNOTATION: version}),
            spec=client.V1PodSpec(containers=[client.V1Container(
                name=self.settings.container, image=image,
                env=[client.V1EnvVar(name="MODEL_VERSION", value=version)],
            )]),
        )
        metadata = client.V1ObjectMeta(annotations={CHANGE_CAUSE: f"model version {version} ({image})"})
        return {"metadata": SERIALIZER.sanitize_for_serialization(metadata),
                "spec": {"template": SERIALIZER.sanitize_for_serialization(template)}}

    def _roll(self, env: str, record: dict) -> Deployment:
        settings = self._env(env)
        apps = self._api(settings.context).apps
        where = f"Deployment {settings.namespace}/{self.settings.deployment}"
        before = self._deployment(env)
        if before is None:
            raise StageFailed(f"deploy: {where} does not exist; apply the manifests first: "
                              f"kubectl apply -k infra/k8s/overlays/{env}")
        old_image = self._container(before).image
        old_version = (before.spec.template.metadata.annotations or {}).get(VERSION_ANNOTATION, "unknown")
        self._call(f"patching {where}", apps.patch_namespaced_deployment, self.settings.deployment,
                   settings.namespace, self.pod_template_patch(record["image"], str(record["version"])))
        problem = self._wait_rollout(env)
        if problem:
            # Never leave the Deployment pointing at a version that did not roll out: back to the template
            # that served (its pods kept serving throughout: maxUnavailable is 0).
            self._call(f"reverting {where}", apps.patch_namespaced_deployment, self.settings.deployment,
                       settings.namespace, self.pod_template_patch(old_image, old_version))
            raise StageFailed(f"deploy: version {record['version']} ({record['image']}) did not roll out in {where}: "
                              f"{problem}; reverted to {old_image}. See kubectl -n {settings.namespace} describe "
                              f"deployment {self.settings.deployment}")
        return Deployment(env, self._url(env, required=False) or where, str(record["version"]))

    def rollout_problem(self, deployment: client.V1Deployment) -> tuple[bool, str | None]:
        """(done, failure) of a rollout, by the rules of `kubectl rollout status`."""
        status, spec = deployment.status, deployment.spec
        if (status.observed_generation or 0) < (deployment.metadata.generation or 0):
            return False, None
        for condition in status.conditions or []:
            if condition.type == "Progressing" and condition.reason == "ProgressDeadlineExceeded":
                return False, f"progress deadline exceeded ({condition.message})"
        wanted = spec.replicas if spec.replicas is not None else 1
        updated, total = status.updated_replicas or 0, status.replicas or 0
        return updated >= wanted and total <= updated and (status.available_replicas or 0) >= updated, None

    def _wait_rollout(self, env: str) -> str | None:
        """None when the rollout completed; otherwise what went wrong."""
        deadline = time.monotonic() + self.settings.rollout_timeout_seconds
        while True:
            deployment = self._deployment(env)
            if deployment is None:
                return "the Deployment was deleted during the rollout"
            done, failure = self.rollout_problem(deployment)
            if failure or done:
                return failure
            if time.monotonic() > deadline:
                status = deployment.status
                return (f"not complete after {self.settings.rollout_timeout_seconds}s (k8s.rollout_timeout_seconds): "
                        f"{status.updated_replicas or 0} updated, {status.available_replicas or 0} available of "
                        f"{deployment.spec.replicas} replicas")
            time.sleep(self.POLL_SECONDS)

    def deploy(self, env: str, version: str | None = None) -> Deployment:
        self._env(env)
        data = self._data()
        if version is None:
            record = self._version_for(env, data)
        else:
            record = self._version(str(version), data)
            self.check_deployable(env, str(version), record["status"])
        deployment = self._roll(env, record)
        self._update(lambda data: self._assign(data, env, str(record["version"])))
        return deployment

    def rollback(self, env: str) -> ModelVersion:
        self._env(env)
        data = self._data()
        due = self._due(env, data)
        if not due or not due["history"]:
            raise StageFailed(f"rollback: {env} has no previous version to return to")
        previous = self._version(due["history"][-1], data)
        if self._deployment(env) is not None:
            self._roll(env, previous)

        def restore(data: dict[str, str]) -> None:
            environments = json.loads(data[ENVIRONMENTS_KEY])
            environments[env] = {"version": str(previous["version"]), "history": due["history"][:-1]}
            data[ENVIRONMENTS_KEY] = json.dumps(environments)

        self._update(restore)
        return self._as_model_version(previous)

    def undeploy(self, env: str) -> None:
        """Deletes the Deployment of `env` (`kubectl delete -k infra/k8s/overlays/<env>` removes the rest)."""
        settings = self._env(env)
        try:
            self._api(settings.context).apps.delete_namespaced_deployment(self.settings.deployment, settings.namespace)
        except ApiException as exc:
            if exc.status != 404:
                raise StageFailed(f"k8s: deleting Deployment {settings.namespace}/{self.settings.deployment}: "
                                  f"{exc.status} {exc.reason}") from None

    # -- the serving contract -------------------------------------------------------------------------
    def serving_version(self, env: str) -> str | None:
        deployment = self._deployment(env)
        if deployment is None:
            return None
        return (deployment.spec.template.metadata.annotations or {}).get(VERSION_ANNOTATION)

    def due_version(self, env: str) -> str | None:
        return str(self._version_for(env, self._data())["version"])

    def schema_of(self, version: str | None) -> list[dict] | None:
        if version is None or not str(version).isdigit():
            return None
        return self._version(version).get("schema")

    def previous_sample(self, env: str) -> list | None:
        data = self._data()
        due = self._due(env, data)
        if not due or not due["history"]:
            return None
        return self._version(due["history"][-1], data).get("sample")

    def _url(self, env: str, required: bool = True) -> str | None:
        """The environment's URL: k8s.environments.<env>.url, else the Service's load-balancer address."""
        settings = self._env(env)
        if settings.url:
            return settings.url.rstrip("/")
        try:
            service = self._api(settings.context).core.read_namespaced_service(self.settings.deployment,
                                                                               settings.namespace)
        except ApiException:
            service = None
        ingress = (service.status.load_balancer.ingress or []) if service and service.status.load_balancer else []
        if ingress:
            host = ingress[0].hostname or ingress[0].ip
            port = service.spec.ports[0].port if service.spec.ports else 80
            return f"http://{host}" + ("" if port == 80 else f":{port}")
        if required:
            raise ConfigError(f"mlops.yaml: k8s.environments.{env}.url: set the URL of the Service (an Ingress or "
                              "LoadBalancer address); the Service has no external address")
        return None

    def invoke(self, env: str, instances: list) -> list:
        return invoke_http(self._url(env), instances)


TARGET = K8sTarget
