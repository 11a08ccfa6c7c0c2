"""Loading the JSON Schemas: ours (shipped in the package) and check-jsonschema's vendored ones."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any


@cache
def own_schema(name: str) -> dict[str, Any]:
    return json.loads(files("mlops_gen.validate").joinpath(f"data/{name}").read_text(encoding="utf-8"))


@cache
def vendored_schema(name: str) -> dict[str, Any]:
    """A schema vendored by check-jsonschema (`azure-pipelines`, `cloudbuild`)."""
    from check_jsonschema.builtin_schemas import get_builtin_schema

    return get_builtin_schema(f"vendor.{name}")
