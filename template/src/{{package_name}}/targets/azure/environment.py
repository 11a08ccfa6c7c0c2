"""The Python packages of the Azure ML environment (training and serving), from pyproject.toml.

No Azure SDK import here: the SDK v2 builders (ml.py) or v1 builders (ml_v1.py) use it.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

PACKAGE = __package__.split(".")[0]
# Custom environments serve through Microsoft's inference server.
INFERENCE_SERVER = "azureml-inference-server-http==1.5.1"
# The scoring script logs model inputs and outputs with its Collector (Azure ML data collection).
DATA_COLLECTOR = "azureml-ai-monitoring==1.0.0"
# azureml-inference-server-http 1.5.1 requires pydantic>=2.12,<2.13: the Azure ML environment pins
# that instead of the project's pydantic (config.py works with both).
SERVING_OVERRIDES = {"pydantic": "pydantic==2.12.5"}


def requirement_name(requirement: str) -> str:
    for separator in ("==", ">=", "<=", "~=", "!=", ">", "<", "[", ";", " "):
        requirement = requirement.split(separator, 1)[0]
    return requirement.strip().lower().replace("_", "-")


def _project(root: Path) -> dict:
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]


def pip_requirements(root: Path) -> list[str]:
    """The project's runtime dependencies plus what Azure ML serving needs."""
    requirements = [SERVING_OVERRIDES.get(requirement_name(r), r) for r in _project(root).get("dependencies", [])]
    return requirements + [INFERENCE_SERVER, DATA_COLLECTOR]


def python_version(root: Path) -> str:
    return _project(root).get("requires-python", ">=3.11").lstrip(">=~ ").split(",")[0]


def conda_spec(root: Path) -> dict:
    return {
        "name": f"{PACKAGE}-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python_version(root)}", "pip", {"pip": pip_requirements(root)}],
    }
