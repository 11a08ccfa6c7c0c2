"""The `azure:` section of mlops.yaml: workspace, training compute, environment image, endpoints, timeouts."""

from pydantic import Field

from ...settings import Strict

# Azure ML names: compute 2-16, endpoints 3-32 (unique per region), deployments 3-32 characters.
COMPUTE_NAME = r"^[A-Za-z][A-Za-z0-9-]{1,15}$"
ENDPOINT_NAME = r"^[A-Za-z][A-Za-z0-9-]{1,30}[A-Za-z0-9]$"


class AzureCompute(Strict):
    name: str = Field("cpu-cluster", pattern=COMPUTE_NAME)
    size: str = Field("Standard_DS3_v2", pattern=r"^[A-Za-z0-9_]+$")
    min_instances: int = Field(0, ge=0)
    max_instances: int = Field(2, ge=1)


class AzureDeployment(Strict):
    """The managed online endpoint of one environment (staging, prod, ...)."""

    endpoint: str = Field(pattern=ENDPOINT_NAME)
    instance_type: str = Field("Standard_DS3_v2", pattern=r"^[A-Za-z0-9_]+$")
    instance_count: int = Field(1, ge=1, le=20)
    request_timeout_ms: int = Field(5000, ge=100, le=180000)


class AzureBatch(Strict):
    """`batch --target azure`: one batch endpoint of the model, a model deployment per version on a cluster."""

    endpoint: str | None = Field(None, pattern=ENDPOINT_NAME)  # unique per region; null: batch is not set up
    compute: str | None = Field(None, pattern=COMPUTE_NAME)    # null: the training cluster (azure.compute.name)
    instance_count: int = Field(1, ge=1, le=100)
    mini_batch_size: int = Field(10, ge=1)                     # input files per run() call
    max_concurrency_per_instance: int = Field(1, ge=1)
    max_retries: int = Field(3, ge=0)                          # a mini-batch that fails is retried this often
    retry_timeout_seconds: int = Field(300, ge=30)             # longest run() of one mini-batch
    timeout_minutes: int = Field(120, ge=1, le=7 * 24 * 60)   # `batch` cancels the job and fails after this


class AzureSettings(Strict):
    location: str = Field(pattern=r"^[a-z][a-z0-9]{2,29}$")
    resource_group: str = Field(min_length=1, max_length=90)
    workspace: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")
    # Not a secret; when empty, AZURE_SUBSCRIPTION_ID or the signed-in az CLI account is used.
    subscription_id: str | None = Field(
        None, pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
    )
    experiment: str = Field("train", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,254}$")
    compute: AzureCompute = AzureCompute()
    # Base image of the Azure ML environment; the Python packages come from pyproject.toml.
    image: str = Field("mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:latest", min_length=1)
    train_timeout_minutes: int = Field(60, ge=1, le=7 * 24 * 60)
    deploy_timeout_minutes: int = Field(30, ge=1, le=240)
    deployments: dict[str, AzureDeployment] = Field(min_length=1)
    batch: AzureBatch = AzureBatch()
    # isolation: multi (environments.<env>.azure_subscription_id): the Azure ML registry that carries each
    # version from this workspace to the environments' workspaces; null: <workspace>-reg (infra/azure/setup.sh).
    registry: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{2,32}$")

    def registry_name(self) -> str:
        return self.registry or f"{self.workspace[:29].rstrip('-_')}-reg"
