"""Options from `[tool.mlops-gen.validate]` in the nearest pyproject.toml, merged with the CLI."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    pass


_KEYS = {"allow-tasks", "disable", "strict"}


def find_pyproject(start: Path) -> Path | None:
    here = start.resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def load_section(pyproject: Path | None) -> dict[str, Any]:
    if pyproject is None:
        return {}
    try:
        doc = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{pyproject}: cannot read [tool.mlops-gen.validate]: {exc}") from None
    section = doc.get("tool", {}).get("mlops-gen", {}).get("validate", {})
    unknown = set(section) - _KEYS
    if unknown:
        raise ConfigError(f"{pyproject}: unknown key(s) in [tool.mlops-gen.validate]: {', '.join(sorted(unknown))}; "
                          f"allowed: {', '.join(sorted(_KEYS))}")
    for key in ("allow-tasks", "disable"):
        value = section.get(key, [])
        if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"{pyproject}: [tool.mlops-gen.validate] {key} must be a list of strings")
    if not isinstance(section.get("strict", False), bool):
        raise ConfigError(f"{pyproject}: [tool.mlops-gen.validate] strict must be true or false")
    return section
