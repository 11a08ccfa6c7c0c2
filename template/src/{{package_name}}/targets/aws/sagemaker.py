"""The SageMaker side of managed training: what runs where, and the SageMaker Pipeline definition.

`definition()` builds the pipeline preprocess -> train -> evaluate -> gate -> register (or fail)
from the SageMaker SDK v3's workflow entities (`sagemaker.core.workflow`: parameters, properties,
JsonGet, Join, conditions), in the step layout of `sagemaker.mlops.workflow` (Name, Type,
Arguments, PropertyFiles). The Arguments of each step are the CreateProcessingJob /
CreateTrainingJob / CreateModelPackage requests, which the tests check against botocore's
service model. Nothing here calls AWS: `python -m <package> pipeline --target aws
--print-definition` works offline.

Why not `sagemaker.mlops.workflow.Pipeline` itself: the `sagemaker` 3.x meta-package pulls in
sagemaker-train, which requires mlflow>=3, which caps pyarrow below this project's pin; sagemaker-core
is the part of the v3 SDK that installs cleanly next to it.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from functools import lru_cache
from pathlib import Path

from ...config import Config
from ...errors import ConfigError

CONTAINER_SCRIPT = "container.py"
CODE_LOCAL = "/opt/ml/processing/input/code"
PIPELINE_VERSION = "2020-12-01"  # the only pipeline definition schema version SageMaker accepts
FRAMEWORK = "SAGEMAKER-SCIKIT-LEARN"
# What the container lacks of this project's runtime dependencies (it brings scikit-learn, pandas,
# numpy, joblib itself: theirs are the versions that train and serve the model).
CONTAINER_REQUIREMENTS = ("pydantic", "pyyaml")
FRAMEWORK_PACKAGES = ("xgboost", "lightgbm")  # model.estimator names that are also package names
SERVING_ENVIRONMENT = {
    "SAGEMAKER_PROGRAM": "inference.py",
    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
}
CONTENT_TYPES = ["application/json", "text/csv"]


def package_name() -> str:
    return __package__.split(".")[0]


def image_uri(config: Config, scope: str) -> str:
    """The prebuilt scikit-learn image of `scope` (training / inference), from the SDK's image table."""
    return _image_uri(config.aws.region, config.aws.framework_version, config.aws.training.instance_type, scope)


@lru_cache(maxsize=16)
def _image_uri(region: str, version: str, instance_type: str, scope: str) -> str:
    # cached: each lookup builds a botocore session of its own to resolve the region's endpoint (~0.05 s)
    from sagemaker.core import image_uris

    return image_uris.retrieve(
        "sklearn", region, version=version, py_version="py3", instance_type=instance_type, image_scope=scope,
    )


def framework_short_version(config: Config) -> str:
    return config.aws.framework_version.split("-", 1)[0]


def _requirements(config: Config) -> str:
    """Pins of what the container lacks, at the versions installed here (the ones tested): with
    model.estimator xgboost or lightgbm (serving.mode image), that framework too, so the training job
    fits the model with the version this repository's image serves it with."""
    from importlib import metadata

    names = [*CONTAINER_REQUIREMENTS, *([config.model.estimator] if config.model.estimator in FRAMEWORK_PACKAGES else [])]
    return "".join(f"{name}=={metadata.version(name)}\n" for name in names)


def source_files(config: Config) -> dict[str, bytes]:
    """The source directory a training or processing job runs: the container script at the top,
    the validated configuration as mlops.yaml, this package, the requirements the container lacks
    and the data file when `data.source` is a local one."""
    import yaml

    package = Path(__file__).resolve().parents[2]
    files = {
        CONTAINER_SCRIPT: (Path(__file__).parent / CONTAINER_SCRIPT).read_bytes(),
        "mlops.yaml": yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).encode(),
        "requirements.txt": _requirements(config).encode(),
    }
    for path in sorted(package.rglob("*.py")):
        files[f"src/{package.name}/{path.relative_to(package).as_posix()}"] = path.read_bytes()
    source = config.data.source
    if not source.startswith("sklearn:") and "://" not in source:
        if Path(source).is_absolute() or ".." in Path(source).parts:
            raise ConfigError(
                f"mlops.yaml: data.source: {source} must lie inside the repository: it is "
                "shipped to SageMaker jobs with the code"
            )
        files[Path(source).as_posix()] = (config.root / source).read_bytes()
    return files


def tarball(files: dict[str, bytes]) -> bytes:
    """A deterministic .tar.gz of `files` (same input, same bytes)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(files):
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(files[name]), 0, 0o644
            archive.addfile(info, io.BytesIO(files[name]))
    return buffer.getvalue()


def bundle_files(model_dir: Path) -> dict[str, bytes]:
    """The model bundle as it is (serving.mode image: the image's server reads it from /opt/ml/model)."""
    return {p.relative_to(model_dir).as_posix(): p.read_bytes() for p in sorted(model_dir.rglob("*")) if p.is_file()}


def model_files(model_dir: Path) -> dict[str, bytes]:
    """The model.tar.gz the prebuilt container serves: the bundle plus this package's container script as
    code/inference.py (SERVING_ENVIRONMENT points the container at it) and schema.py beside it."""
    files = bundle_files(model_dir)
    files["code/inference.py"] = (Path(__file__).parent / CONTAINER_SCRIPT).read_bytes()
    # the container script parses requests with the project's schema.py, imported as model_schema
    files["code/model_schema.py"] = (Path(__file__).resolve().parents[2] / "schema.py").read_bytes()
    return files


def metadata_properties(metrics: dict, lineage: dict) -> dict[str, str]:
    """CustomerMetadataProperties of a model package: metrics and lineage, readable without S3."""
    properties = {f"metric.{name}": f"{value:.6g}" for name, value in metrics.items()}
    for key in ("git_commit", "data_fingerprint", "estimator", "trained_on", "image"):
        if lineage.get(key):
            properties[f"lineage.{key}"] = str(lineage[key])[:256]
    return properties


def definition(config: Config, commit: str) -> dict:
    """The SageMaker Pipeline definition (JSON-ready dict) for the code of `commit`."""
    from sagemaker.core.workflow.conditions import (
        ConditionGreaterThanOrEqualTo,
        ConditionLessThanOrEqualTo,
    )
    from sagemaker.core.workflow.execution_variables import ExecutionVariables
    from sagemaker.core.workflow.functions import Join, JsonGet
    from sagemaker.core.workflow.parameters import ParameterFloat, ParameterString
    from sagemaker.core.workflow.properties import Properties, PropertyFile

    aws = config.aws
    role = ParameterString(name="RoleArn", default_value=aws.resolved_role_arn() or None)
    bucket = aws.resolved_bucket()
    artifact_root = ParameterString(
        name="ArtifactRoot", default_value=f"s3://{bucket}/{aws.prefix}" if bucket else None
    )
    code_version = ParameterString(name="CodeVersion", default_value=commit)
    processing_type = ParameterString(
        name="ProcessingInstanceType", default_value=aws.training.processing_instance_type
    )
    training_type = ParameterString(name="TrainingInstanceType", default_value=aws.training.instance_type)
    staging = config.environments.get("staging")
    approval = ParameterString(
        name="ModelApprovalStatus",
        default_value="PendingManualApproval" if staging is None or staging.approval_required else "Approved",
    )
    threshold = ParameterFloat(name="GateThreshold", default_value=config.gate.threshold)
    parameters = [role, artifact_root, code_version, processing_type, training_type, approval, threshold]
    image_mode = config.serving.mode == "image"
    if image_mode:  # the image this commit's CI pushed (MODEL_IMAGE), or one named when the pipeline starts
        model_image = ParameterString(name="ModelImage", default_value=os.environ.get("MODEL_IMAGE") or None)
        parameters.append(model_image)

    run_root = Join(on="/", values=[artifact_root, "pipelines", ExecutionVariables.PIPELINE_EXECUTION_ID])
    code_prefix = Join(on="/", values=[artifact_root, "code", code_version, "source"])
    sourcedir = Join(on="/", values=[artifact_root, "code", code_version, "sourcedir.tar.gz"])
    training_image, serving_image = image_uri(config, "training"), image_uri(config, "inference")
    stopping = {"MaxRuntimeInSeconds": aws.training.max_runtime_seconds}

    def s3_input(name: str, uri, local: str) -> dict:
        return {
            "InputName": name,
            "AppManaged": False,
            "S3Input": {
                "S3Uri": uri.expr if hasattr(uri, "expr") else uri,
                "LocalPath": local,
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
                "S3DataDistributionType": "FullyReplicated",
            },
        }

    def s3_output(name: str) -> dict:
        return {
            "OutputName": name,
            "AppManaged": False,
            "S3Output": {
                "S3Uri": Join(on="/", values=[run_root, name]).expr,
                "LocalPath": f"/opt/ml/processing/{name}",
                "S3UploadMode": "EndOfJob",
            },
        }

    def processing(mode: str, inputs: list[dict], outputs: list[str]) -> dict:
        return {
            "ProcessingResources": {
                "ClusterConfig": {
                    "InstanceCount": 1,
                    "InstanceType": processing_type.expr,
                    "VolumeSizeInGB": 30,
                }
            },
            "AppSpecification": {
                "ImageUri": training_image,
                "ContainerEntrypoint": ["python3", f"{CODE_LOCAL}/{CONTAINER_SCRIPT}", mode],
            },
            "RoleArn": role.expr,
            "StoppingCondition": stopping,
            "ProcessingInputs": [s3_input("code", code_prefix, CODE_LOCAL), *inputs],
            "ProcessingOutputConfig": {"Outputs": [s3_output(name) for name in outputs]},
        }

    preprocessed = Properties(step_name="Preprocess", shape_name="DescribeProcessingJobResponse")
    trained = Properties(step_name="Train", shape_name="DescribeTrainingJobResponse")
    evaluated = Properties(step_name="Evaluate", shape_name="DescribeProcessingJobResponse")
    model_data = trained.ModelArtifacts.S3ModelArtifacts.expr
    report = PropertyFile(name="EvaluationReport", output_name="evaluation", path="evaluation.json")

    def quoted(value) -> dict:  # the training toolkit reads hyperparameters as JSON values
        return Join(on="", values=['"', value, '"']).expr

    preprocess = {
        "Name": "Preprocess",
        "Type": "Processing",
        "Arguments": processing("preprocess", [], ["train", "test"]),
    }
    train = {
        "Name": "Train",
        "Type": "Training",
        "Arguments": {
            "AlgorithmSpecification": {"TrainingImage": training_image, "TrainingInputMode": "File"},
            "HyperParameters": {
                "sagemaker_program": json.dumps(CONTAINER_SCRIPT),
                "sagemaker_submit_directory": quoted(sourcedir),
                "sagemaker_region": json.dumps(aws.region),
                "sagemaker_container_log_level": "20",
            },
            "InputDataConfig": [
                {
                    "ChannelName": "train",
                    "ContentType": "text/csv",
                    "DataSource": {
                        "S3DataSource": {
                            "S3DataType": "S3Prefix",
                            "S3DataDistributionType": "FullyReplicated",
                            "S3Uri": preprocessed.ProcessingOutputConfig.Outputs["train"].S3Output.S3Uri.expr,
                        }
                    },
                }
            ],
            "OutputDataConfig": {"S3OutputPath": Join(on="/", values=[run_root, "model"]).expr},
            "ResourceConfig": {"InstanceCount": 1, "InstanceType": training_type.expr, "VolumeSizeInGB": 30},
            "RoleArn": role.expr,
            "StoppingCondition": stopping,
        },
    }
    evaluate = {
        "Name": "Evaluate",
        "Type": "Processing",
        "Arguments": processing(
            "evaluate",
            [
                s3_input("model", trained.ModelArtifacts.S3ModelArtifacts, "/opt/ml/processing/model"),
                s3_input(
                    "test",
                    preprocessed.ProcessingOutputConfig.Outputs["test"].S3Output.S3Uri,
                    "/opt/ml/processing/test",
                ),
            ],
            ["evaluation"],
        ),
        "PropertyFiles": [report.expr],
    }
    evaluation_uri = Join(
        on="/",
        values=[evaluated.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri, "evaluation.json"],
    )
    endpoint_types = sorted({config.aws.endpoint(env).instance_type for env in config.environments})
    register = {
        "Name": "Register",
        "Type": "RegisterModel",
        "Arguments": {
            "ModelPackageGroupName": config.model.name,
            "ModelPackageDescription": f"{config.project}: trained by the SageMaker Pipeline",
            "InferenceSpecification": {
                "Containers": [
                    {"Image": model_image.expr, "ModelDataUrl": model_data}
                    if image_mode
                    else {
                        "Image": serving_image,
                        "ModelDataUrl": model_data,
                        "Environment": SERVING_ENVIRONMENT,
                        "Framework": FRAMEWORK,
                        "FrameworkVersion": framework_short_version(config),
                    }
                ],
                "SupportedContentTypes": CONTENT_TYPES,
                "SupportedResponseMIMETypes": ["application/json"],
                "SupportedRealtimeInferenceInstanceTypes": endpoint_types,
            },
            "ModelApprovalStatus": approval.expr,
            "ModelMetrics": {
                "ModelQuality": {
                    "Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri.expr}
                }
            },
        },
    }
    metric = JsonGet(step_name="Evaluate", property_file=report, json_path=f"metrics.{config.gate.metric}")
    condition_class = (
        ConditionLessThanOrEqualTo if config.gate.lower_is_better else ConditionGreaterThanOrEqualTo
    )
    fail = {
        "Name": "GateFailed",
        "Type": "Fail",
        "Arguments": {
            "ErrorMessage": f"gate: {config.gate.metric} missed the threshold; the model is not registered"
        },
    }
    gate = {
        "Name": "Gate",
        "Type": "Condition",
        "Arguments": {
            "Conditions": [condition_class(left=metric, right=threshold).to_request()],
            "IfSteps": [register],
            "ElseSteps": [fail],
        },
    }
    return _expressions(
        {
            "Version": PIPELINE_VERSION,
            "Metadata": {},
            "Parameters": [p.to_request() for p in parameters],
            "PipelineExperimentConfig": {
                "ExperimentName": {"Get": "Execution.PipelineName"},
                "TrialName": {"Get": "Execution.PipelineExecutionId"},
            },
            "Steps": [preprocess, train, evaluate, gate],
        }
    )


def _expressions(value):
    """Pipeline variables (parameters, properties, functions) as their JSON expressions, as
    `sagemaker.mlops.workflow.pipeline.interpolate` writes them."""
    from sagemaker.core.workflow import is_pipeline_variable

    if is_pipeline_variable(value):
        return value.expr
    if isinstance(value, dict):
        return {k: _expressions(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_expressions(v) for v in value]
    return value
