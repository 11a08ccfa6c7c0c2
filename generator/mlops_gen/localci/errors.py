"""Errors that end a local CI run before (or instead of) running steps: exit status 2."""

from __future__ import annotations

from pathlib import Path

import yaml


class CIUsageError(Exception):
    """Bad usage, or a CI file this runner cannot run (unknown task, unmapped image, ...).

    The message names the offending key, task or image; the command exits with status 2.
    """


def load_mapping(path: Path) -> dict:
    """A CI file's top-level mapping; anything else ends the run with a CIUsageError naming the file."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise CIUsageError(f"{path.name}: not valid YAML: {exc}") from exc
    if not isinstance(doc, dict):
        raise CIUsageError(f"{path.name}: expected a mapping at the top level")
    return doc
