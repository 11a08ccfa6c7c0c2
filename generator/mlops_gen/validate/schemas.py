"""Loading the JSON Schemas: ours (shipped in the package) and check-jsonschema's vendored ones."""

from __future__ import annotations

import json
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

from mlops_gen.validate.precomputed import read_data


@cache
def own_schema(name: str) -> dict[str, Any]:
    return json.loads(read_data(name))


@cache
def vendored_schema(name: str) -> dict[str, Any]:
    """A schema vendored by check-jsonschema (`azure-pipelines`, `cloudbuild`).

    Read from check-jsonschema's package folder without importing the package: its __init__
    imports its whole CLI (a fifth of a second), of which only these JSON files are needed here."""
    spec = find_spec("check_jsonschema")
    for folder in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(folder) / "builtin_schemas" / "vendor" / f"{name}.json"
        if path.is_file():
            return json.loads(path.read_bytes())
    from check_jsonschema.builtin_schemas import get_builtin_schema

    return get_builtin_schema(f"vendor.{name}")
