"""mlops-gen: generate ML repositories that train, test and deploy on every commit."""

from pathlib import Path

__version__ = "0.1.0"

#: The root of this template repository (copier.yml lives here).
TEMPLATE_ROOT = Path(__file__).resolve().parents[2]
