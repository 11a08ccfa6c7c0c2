"""mlops-gen: generate ML repositories that train, test and deploy on every commit."""

from pathlib import Path

# The one version number: the wheel's metadata (hatch reads it here) and the template's pin.
__version__ = "0.1.0"

_HERE = Path(__file__).resolve().parent
#: A source checkout this package runs from (its root holds pyproject.toml), or None when installed.
CHECKOUT_ROOT: Path | None = _HERE.parents[1] if (_HERE.parents[1] / "copier.yml").is_file() \
    and (_HERE.parents[1] / "pyproject.toml").is_file() else None
#: The template (the folder holding copier.yml): packaged in the wheel, or the checkout's root.
TEMPLATE_ROOT: Path = _HERE / "_template" if (_HERE / "_template" / "copier.yml").is_file() \
    else (CHECKOUT_ROOT or _HERE / "_template")
