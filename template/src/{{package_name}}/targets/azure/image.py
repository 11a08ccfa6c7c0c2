"""serving.mode image: where azure-pipelines.yml pushes this repository's image.

    python -m <package>.targets.azure.image      prints "<registry> <repository>"

The registry is the Azure Container Registry attached to the workspace of mlops.yaml (infra/azure/setup.sh
creates or reuses it and attaches it), asked of the workspace itself so that the CI file names no registry
of its own; the repository is model.name. The pipeline then builds with `az acr build` and records the
pushed image by digest in MODEL_IMAGE for `register`.
"""

from __future__ import annotations

import sys

from ...errors import ConfigError


def registry_name(workspace) -> str:
    """The name of the workspace's container registry (its ARM id ends in /registries/<name>)."""
    arm_id = getattr(workspace, "container_registry", None) or ""
    if "/registries/" not in arm_id:
        raise ConfigError(
            f"azure.workspace: workspace {workspace.name} has no container registry attached; run "
            "infra/azure/setup.sh (it creates or reuses one and attaches it)")
    return arm_id.rstrip("/").rsplit("/", 1)[-1]


def repository(config) -> str:
    """ACR repository names are lower case."""
    return config.model.name.lower()


def main() -> int:
    from pathlib import Path

    from ... import config as config_lib
    from .target import AzureTarget

    config = config_lib.load("mlops.yaml")
    target = AzureTarget(config, Path.cwd())
    print(registry_name(target.client.workspaces.get(config.azure.workspace)), repository(config))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
