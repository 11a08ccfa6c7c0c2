"""Azure Machine Learning (SDK v2, azure-ai-ml) entities built from mlops.yaml and pyproject.toml.

One place builds the training command job, its environment, and each environment's managed online
endpoint and deployment. The `azure` target submits these entities; the YAML specs in `infra/azure/ml/`
(for `az ml ... -f`) are dumps of the same entities, and a test fails when they drift:

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
    """`env`'s deployment; with capture on (monitoring.capture_percent) it collects inputs and outputs."""
    settings = config.azure.deployments[env]
    collector = monitor.data_collector(config, env)
    return ManagedOnlineDeployment(
        name=name,
        endpoint_name=settings.endpoint,
        model=model_id,
        environment=environment_id,
        code_configuration=CodeConfiguration(code=str(root / "src"), scoring_script=SCORING_SCRIPT),
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
    for env_name in config.azure.deployments:
        out[f"endpoint-{env_name}.yml"] = _spec(endpoint(config, env_name), "managedOnlineEndpoint", {})
        out[f"deployment-{env_name}.yml"] = _spec(
            deployment(config, root, env_name, "blue", model_ref, env_ref), "managedOnlineDeployment",
            {"code_configuration.code": src},
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
