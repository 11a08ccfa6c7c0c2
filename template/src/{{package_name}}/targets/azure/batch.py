"""Azure ML batch scoring entities (azure-ai-ml): the model's batch endpoint, one model deployment per
registered version, and the inputs and outputs of an invocation.

The deployment runs batch_score.py on the cluster with the serving environment. Its output action is
summary_only: the script writes the files itself, one scores file per input file in the input's format
(id columns, prediction, proba_<class>) and a `<name>.rejects.<ext>` file beside it for rows that fail
the model's schema, exactly as `batch --target local` does.
"""

from __future__ import annotations

import json
from pathlib import Path

from azure.ai.ml import Input, Output
from azure.ai.ml.constants import AssetTypes, BatchDeploymentOutputAction
from azure.ai.ml.entities import (
    BatchEndpoint,
    BatchRetrySettings,
    CodeConfiguration,
    ModelBatchDeployment,
    ModelBatchDeploymentSettings,
    ResourceConfiguration,
)

from ...config import Config
from ...errors import ConfigError
from . import batch_input

PACKAGE = __package__.split(".")[0]
SCORING_SCRIPT = f"{PACKAGE}/targets/azure/batch_score.py"
INPUT, OUTPUT = "input", "score"  # the job's named input and output


def endpoint_name(config: Config) -> str:
    name = config.azure.batch.endpoint
    if not name:
        raise ConfigError("mlops.yaml: azure.batch.endpoint: not set; name the model's batch endpoint "
                          "(3-32 letters, digits or '-', unique in the region)")
    return name


def deployment_name(version: str) -> str:
    """One deployment per registered version, so a job always says which version scored it."""
    return f"version-{version}"


def endpoint(config: Config) -> BatchEndpoint:
    return BatchEndpoint(name=endpoint_name(config), description=f"Batch scoring of {config.model.name}",
                         tags={"project": config.model.name})


def deployment(config: Config, root: Path, version: str, model_id: str, environment_id: str) -> ModelBatchDeployment:
    """The deployment of `version`: batch_score.py with the repository's batch settings as variables."""
    settings = config.azure.batch
    return ModelBatchDeployment(
        name=deployment_name(version),
        endpoint_name=endpoint_name(config),
        model=model_id,
        environment=environment_id,
        code_configuration=CodeConfiguration(code=str(root / "src"), scoring_script=SCORING_SCRIPT),
        compute=settings.compute or config.azure.compute.name,
        tags={"model_version": str(version)},
        # instance count as resources (not settings): the SDK's YAML loader refuses it given twice
        resources=ResourceConfiguration(instance_count=settings.instance_count),
        settings=ModelBatchDeploymentSettings(
            mini_batch_size=settings.mini_batch_size,
            max_concurrency_per_instance=settings.max_concurrency_per_instance,
            output_action=BatchDeploymentOutputAction.SUMMARY_ONLY,
            # A file that cannot be read or scored fails the job: rows are checked one by one, files never skipped.
            error_threshold=0,
            retry_settings=BatchRetrySettings(max_retries=settings.max_retries,
                                              timeout=settings.retry_timeout_seconds),
            logging_level="info",
            environment_variables=scoring_variables(config, version),
        ),
    )


def scoring_variables(config: Config, version: str) -> dict[str, str]:
    """What batch_score.py needs of mlops.yaml (the job uploads src/ only)."""
    return {
        "MODEL_VERSION": str(version),
        "BATCH_ID_COLUMNS": json.dumps(config.batch_id_columns),
        "BATCH_ALLOWED_EXTRA": json.dumps([config.data.target]),
        "BATCH_CHUNK_ROWS": str(config.batch.chunk_rows),
        "BATCH_SEP": config.data.sep,
    }


def job_io(source: str, output: str) -> tuple[dict[str, Input], dict[str, Output]]:
    """The invocation's inputs and outputs; a local path or an unsupported URI is refused (exit 2)."""
    kind = batch_input.input_type(source)
    folder = batch_input.check_output(output)
    return ({INPUT: Input(type=AssetTypes.URI_FILE if kind == "uri_file" else AssetTypes.URI_FOLDER, path=source)},
            {OUTPUT: Output(type=AssetTypes.URI_FOLDER, path=folder)})
