"""The `k8s:` section of mlops.yaml: where the Kubernetes target finds the cluster, the image and the
registry of versions. The shape of the workload (replicas, resources, autoscaling bounds) lives in
infra/k8s/ (kustomize), which is applied to the cluster; this section says where to deploy into it."""

from __future__ import annotations

from pydantic import Field

from ...settings import Strict

# A Kubernetes object name (DNS-1123 label) and an image repository without tag or digest.
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"
IMAGE_REPOSITORY = r"^$|^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$"


class K8sEnvironment(Strict):
    """One environment: a namespace, on the cluster of a kubeconfig context."""

    namespace: str = Field(pattern=DNS_LABEL)
    # kubeconfig context (null: the current one, or the in-cluster service account inside a pod).
    context: str | None = Field(None, min_length=1)
    # Where `smoke` reaches the Service (an Ingress or LoadBalancer URL); null: the external address of
    # the Service when it is of type LoadBalancer.
    url: str | None = Field(None, pattern=r"^https?://[^\s/]+(/\S*)?$")


class K8sSettings(Strict):
    # The image repository the CI pushes to (ECR, Azure Container Registry, Artifact Registry, ...);
    # the environment variable K8S_IMAGE wins. The tag is IMAGE_TAG, else the git commit trained on.
    image: str = Field("", pattern=IMAGE_REPOSITORY)
    # The Deployment and its container (infra/k8s/base/deployment.yaml).
    deployment: str = Field(pattern=DNS_LABEL)
    container: str = Field("server", pattern=DNS_LABEL)
    # The registry of versions: a ConfigMap <model>-registry in this namespace (of registry_context).
    registry_namespace: str = Field(pattern=DNS_LABEL)
    registry_context: str | None = Field(None, min_length=1)
    rollout_timeout_seconds: int = Field(600, ge=10, le=3600)
    # The clusters' Kubernetes version (major.minor): the manifests are validated against its schemas.
    kubernetes_version: str = Field("1.34", pattern=r"^1\.\d{1,2}$")
    environments: dict[str, K8sEnvironment] = Field(min_length=1)
