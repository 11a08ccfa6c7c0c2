"""Azure Machine Learning (SDK v2, azure-ai-ml) entities built from mlops.yaml and pyproject.toml.

One place builds the training command job, its environment, and each environment's managed online
endpoint and deployment (serving.mode prebuilt: the environment plus score.py; image: this repository's
image as a custom container, `serving_environment`). The `azure` target submits these entities; the YAML
specs in `infra/azure/ml/` (for `az ml ... -f`) are dumps of the same entities, and a test fails when
they drift:

    python -m <package>.targets.azure.ml infra/azure/ml     # rewrite the specs after editing mlops.yaml
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import yaml
from azure.ai.ml import Output, command
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    CodeConfiguration,
    CommandJob,
    Environment,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    OnlineRequestSettings,
)

from ...config import Config
from . import monitor
from .environment import conda_spec

PACKAGE = __package__.split(".")[0]
SPEC_DIR = "infra/azure/ml"
SCORING_SCRIPT = f"{PACKAGE}/targets/azure/score.py"
SCHEMAS = "https://azuremlschemas.azureedge.net/latest"
# serving.mode image: the routes and port of the image's server (Dockerfile, serving.py), as Azure ML probes them.
IMAGE_PORT = 8080
INFERENCE_CONFIG = {
    "liveness_route": {"port": IMAGE_PORT, "path": "/live"},
    "readiness_route": {"port": IMAGE_PORT, "path": "/ready"},
    "scoring_route": {"port": IMAGE_PORT, "path": "/score"},
}


def environment_name(config: Config) -> str:
    return f"{config.model.name}-env"


def environment(config: Config, root: Path) -> Environment:
    """Named environment whose version is a hash of its content: unchanged dependencies reuse the image."""
    conda = conda_spec(root)
    digest = hashlib.sha256(json.dumps([config.azure.image, conda], sort_keys=True).encode()).hexdigest()
    return Environment(
        name=environment_name(config),
        version=digest[:16],
        image=config.azure.image,
        conda_file=conda,
        description=f"Training and serving environment of {config.model.name}",
    )


def serving_environment_name(config: Config) -> str:
    return f"{config.model.name}-image"


def serving_environment(config: Config, image: str) -> Environment:
    """serving.mode image: the image a version was registered with, as a custom container. Its version is a
    hash of the image reference, so each image gets one environment version and a deploy never moves to
    another image by re-creating one."""
    digest = hashlib.sha256(json.dumps([image, INFERENCE_CONFIG], sort_keys=True).encode()).hexdigest()
    return Environment(
        name=serving_environment_name(config),
        version=digest[:16],
        image=image,
        inference_config=INFERENCE_CONFIG,
        description=f"Serving image of {config.model.name} (this repository's Dockerfile, target mounted)",
    )


def train_command() -> str:
    """What runs on the cluster: the same `train` stage, in-process, then the bundle goes to the output."""
    return (
        f"python -m {PACKAGE} train --target local"
        ' && mkdir -p "${{outputs.model}}" && cp -R artifacts/model/. "${{outputs.model}}"'
    )


def train_job(config: Config, root: Path, environment_id: str, tags: dict | None = None) -> CommandJob:
    settings = config.azure
    node = command(
        code=str(root),
        command=train_command(),
        environment=environment_id,
        compute=settings.compute.name,
        outputs={"model": Output(type=AssetTypes.URI_FOLDER)},
        experiment_name=settings.experiment,
        display_name=f"train {config.model.name}",
        environment_variables={"PYTHONPATH": "src"},
        tags=tags or {},
        timeout=settings.train_timeout_minutes * 60,
    )
    return node._to_job()


def endpoint(config: Config, env: str) -> ManagedOnlineEndpoint:
    return ManagedOnlineEndpoint(
        name=config.azure.deployments[env].endpoint,
        auth_mode="key",
        description=f"{env} endpoint of {config.model.name}",
        tags={"project": config.model.name, "env": env},
    )


def deployment(config: Config, root: Path, env: str, name: str, model_id: str,
               environment_id: str) -> ManagedOnlineDeployment:
    """`env`'s deployment; with capture on (monitoring.capture_percent) it collects inputs and outputs.
    serving.mode image: `environment_id` is the image's environment (serving_environment) and the
    container runs its own server on the model Azure ML mounts (AZUREML_MODEL_DIR): no scoring script,
    and no data collector (the collections are filled by score.py's Collector, which the image lacks)."""
    settings = config.azure.deployments[env]
    image = config.serving.mode == "image"
    collector = None if image else monitor.data_collector(config, env)
    return ManagedOnlineDeployment(
        name=name,
        endpoint_name=settings.endpoint,
        model=model_id,
        environment=environment_id,
        code_configuration=None if image else CodeConfiguration(code=str(root / "src"),
                                                                scoring_script=SCORING_SCRIPT),
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
        request_settings=OnlineRequestSettings(request_timeout_ms=settings.request_timeout_ms),
        environment_variables={"MODEL_NAME": config.model.name, **({"CAPTURE": "1"} if collector else {})},
        data_collector=collector,
    )


# -- YAML specs -----------------------------------------------------------------------------------
def _spec(entity, schema: str, paths: dict[str, str], drop: tuple = ()) -> dict:
    """An entity as `az ml` YAML: repository-relative paths, no volatile fields."""
    data = json.loads(json.dumps(entity._to_dict()))
    for key in drop:
        data.pop(key, None)
    for dotted, value in paths.items():
        *parents, leaf = dotted.split(".")
        node = data
        for part in parents:
            node = node[part]
        node[leaf] = value
    return {"$schema": f"{SCHEMAS}/{schema}.schema.json", **data}


def specs(config: Config, root: Path) -> dict[str, dict]:
    """The v2 YAML specs of this repository: file name (under azureml/) -> content."""
    spec_dir = root / SPEC_DIR
    env = environment(config, root)
    env_ref = f"azureml:{env.name}@latest"
    model_ref = f"azureml:{config.model.name}@latest"
    src = os.path.relpath(root / "src", spec_dir)
    out = {
        "conda.yaml": conda_spec(root),
        "environment.yml": _spec(env, "environment", {"conda_file": "conda.yaml"},
                                 drop=("version", "tags")),
        "train-job.yml": _spec(
            train_job(config, root, env_ref), "commandJob",
            {"code": os.path.relpath(root, spec_dir)},
            drop=("inputs", "parameters", "properties", "tags"),
        ),
    }
    image = config.serving.mode == "image"
    # serving.mode image: the deployment runs the image its version was registered with (`deploy` creates
    # that environment); by hand, create it first with the image: `az ml environment create --name ...`.
    serving_ref = f"azureml:{serving_environment_name(config)}@latest" if image else env_ref
    for env_name in config.azure.deployments:
        out[f"endpoint-{env_name}.yml"] = _spec(endpoint(config, env_name), "managedOnlineEndpoint", {})
        out[f"deployment-{env_name}.yml"] = _spec(
            deployment(config, root, env_name, "blue", model_ref, serving_ref), "managedOnlineDeployment",
            {} if image else {"code_configuration.code": src},
        )
    return out


def dump(spec: dict) -> str:
    return yaml.safe_dump(spec, sort_keys=False, width=110)


def write_specs(config: Config, root: Path, dest: Path) -> list[Path]:
    dest.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in specs(config, root).items():
        (dest / name).write_text(
            "# Generated from mlops.yaml by `python -m " + f"{PACKAGE}.targets.azure.ml {SPEC_DIR}`; "
            "a test fails when it drifts.\n" + dump(spec)
        )
        written.append(dest / name)
    return written


def main(argv: list[str]) -> int:
    from ... import config as config_lib

    dest = Path(argv[0] if argv else SPEC_DIR)
    for path in write_specs(config_lib.load("mlops.yaml"), Path.cwd(), dest):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
