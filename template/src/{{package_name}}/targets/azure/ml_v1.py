"""Azure Machine Learning SDK v1 (azureml-core, unsupported by Microsoft since 2026-06-30) objects
built from mlops.yaml and pyproject.toml, without a workspace: the training environment and run
configuration, the pipeline's one PythonScriptStep, and the ACI deployment of each environment.

azureml-pipeline-steps (where `PythonScriptStep` is published) cannot be installed next to this
project's pins: through azureml-dataprep it needs cloudpickle<3 (joblib 1.6 needs >=3) and
pyarrow<24. Its PythonScriptStep is a subclass of azureml-pipeline-core's `_PythonScriptStepBase`
that only forwards the same arguments, so the step is built from that base.
"""

from __future__ import annotations

from pathlib import Path

from azureml.core import Environment, RunConfiguration
from azureml.core.conda_dependencies import CondaDependencies
from azureml.core.model import InferenceConfig
from azureml.core.webservice import AciWebservice
from azureml.pipeline.core import PipelineData
from azureml.pipeline.core._python_script_step_base import _PythonScriptStepBase as PythonScriptStep

from ...config import Config
from .environment import PACKAGE, pip_requirements, python_version

TRAIN_SCRIPT = f"src/{PACKAGE}/targets/azure/train_step_v1.py"
SCORING_SCRIPT = f"{PACKAGE}/targets/azure/score.py"
ACI_CPU_CORES, ACI_MEMORY_GB = 1, 2


def environment(config: Config, root: Path) -> Environment:
    env = Environment(name=f"{config.model.name}-env")
    env.docker.base_image = config.azure.image
    env.python.user_managed_dependencies = False
    env.python.conda_dependencies = CondaDependencies.create(
        python_version=python_version(root), pip_packages=pip_requirements(root)
    )
    env.environment_variables = {"PYTHONPATH": "src"}
    return env


def run_config(config: Config, root: Path) -> RunConfiguration:
    run = RunConfiguration()
    run.target = config.azure.compute.name
    run.environment = environment(config, root)
    return run


def model_output() -> PipelineData:
    return PipelineData("model", is_directory=True)


def train_step(config: Config, root: Path, output: PipelineData) -> PythonScriptStep:
    return PythonScriptStep(
        name="train",
        script_name=TRAIN_SCRIPT,
        arguments=["--output", output],
        outputs=[output],
        compute_target=config.azure.compute.name,
        runconfig=run_config(config, root),
        source_directory=str(root),
        allow_reuse=False,
    )


def inference_config(config: Config, root: Path) -> InferenceConfig:
    return InferenceConfig(
        entry_script=SCORING_SCRIPT, source_directory=str(root / "src"), environment=environment(config, root)
    )


def deployment_config(config: Config, env: str, version: str) -> AciWebservice:
    return AciWebservice.deploy_configuration(
        cpu_cores=ACI_CPU_CORES, memory_gb=ACI_MEMORY_GB, auth_enabled=True,
        tags={"project": config.model.name, "env": env, "model_version": str(version)},
        description=f"{env} service of {config.model.name} version {version}",
    )


def service_name(config: Config, env: str, version: str) -> str:
    """ACI service names: 3-32 lower-case letters, digits and '-'; one service per version."""
    suffix = f"-v{version}"
    base = config.azure.deployments[env].endpoint.lower()[: 32 - len(suffix)].rstrip("-")
    return base + suffix


def definition(config: Config, root: Path) -> dict:
    """What the pipeline runs, as JSON (for --print-definition)."""
    run = run_config(config, root)
    return {
        "sdk": "v1 (azureml-core)",
        "step": {"name": "train", "script": TRAIN_SCRIPT, "compute": run.target,
                 "arguments": ["--output", "<model>"]},
        "environment": {"name": run.environment.name, "base_image": run.environment.docker.base_image,
                        "pip": pip_requirements(root)},
        "deployments": {env: {"service": service_name(config, env, "<version>"), "type": "ACI",
                              "cpu_cores": ACI_CPU_CORES, "memory_gb": ACI_MEMORY_GB, "auth_enabled": True}
                        for env in config.azure.deployments},
    }
