"""Which files are CI files, and in which dialect: by name, and by content."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

AWS, AZURE, GCP = "aws", "azure", "gcp"
CFN, TRIGGER = "cfn", "gcp-trigger"
DIALECTS = (AWS, AZURE, GCP)

SKIP_DIRS = {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".tox", ".nox", ".mypy_cache",
             ".pytest_cache", ".ruff_cache", ".local-ci", "site-packages", "dist", ".eggs"}
YAML_SUFFIXES = {".yml", ".yaml"}

_BUILDSPEC_KEYS = {"version", "run-as", "env", "proxy", "batch", "phases", "reports", "artifacts", "cache"}
_AZURE_KEYS = {"name", "appendCommitMessageToRunName", "trigger", "pr", "schedules", "parameters", "resources",
               "variables", "pool", "stages", "jobs", "steps", "extends", "lockBehavior", "phases",
               "container", "services", "workspace", "strategy", "continueOnError", "timeoutInMinutes",
               "cancelTimeoutInMinutes", "condition", "dependsOn", "queue", "server", "templateContext"}
_AZURE_BODY = {"stages", "jobs", "steps", "extends", "phases", "variables"}
_GCB_STEP_KEYS = {"name", "args", "env", "dir", "id", "waitFor", "wait_for", "entrypoint", "secretEnv",
                  "secret_env", "volumes", "timeout", "script", "allowFailure", "allow_failure",
                  "allowExitCodes", "allow_exit_codes", "automapSubstitutions", "automap_substitutions"}
# Cheap pre-filter for folder walks: a CI file has one of these keys at the top level.
_TOP_KEY = re.compile(
    r"^(?:version|phases|batch|steps|stages|jobs|trigger|pr|extends|variables|parameters|pool|resources|"
    r"schedules|substitutions|images|options|\$\{\{)[^\n]*:", re.MULTILINE)


def by_name(path: Path) -> str | None:
    name = path.name.lower()
    parts = {p.lower() for p in path.parts[:-1]}
    if path.suffix.lower() in YAML_SUFFIXES:
        if "buildspec" in name:
            return AWS
        if "azure-pipelines" in name or ".azure-pipelines" in parts or ".azure_pipelines" in parts:
            return AZURE
        if "cloudbuild" in name:
            return GCP
    elif path.suffix.lower() == ".json" and "cloudbuild" in name:
        return GCP
    return None


def by_infra_location(path: Path) -> str | None:
    parts = [p.lower() for p in path.parts]
    for i in range(len(parts) - 2):
        if parts[i] == "infra" and parts[i + 1] in ("aws", "gcp"):
            suffix = path.suffix.lower()
            if parts[i + 1] == "aws" and suffix in YAML_SUFFIXES | {".json", ".template"}:
                return CFN
            if parts[i + 1] == "gcp" and suffix in YAML_SUFFIXES | {".json"}:
                return TRIGGER
    return None


def looks_like_cfn(text: str) -> bool:
    return "AWSTemplateFormatVersion" in text or re.search(r"^Resources\s*:", text, re.MULTILINE) is not None


def looks_like_trigger(data: Any) -> bool:
    keys = {"github", "triggerTemplate", "trigger_template", "pubsubConfig", "webhookConfig",
            "repositoryEventConfig", "sourceToBuild", "gitFileSource", "filename", "build", "autodetect"}
    return isinstance(data, dict) and bool(keys & set(data)) and "steps" not in data


def might_be_ci(text: str) -> bool:
    return _TOP_KEY.search(text) is not None


def _real_keys(data: dict) -> set[str]:
    return {str(k) for k in data if not str(k).startswith("${{")}


def by_content(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    keys = _real_keys(data)
    if "version" in keys and keys & {"phases", "batch"} and keys <= _BUILDSPEC_KEYS:
        return AWS
    steps = data.get("steps")
    if isinstance(steps, list) and steps and all(
        isinstance(s, dict) and "name" in s and set(map(str, s)) <= _GCB_STEP_KEYS for s in steps
    ) and not (keys & {"jobs", "stages", "pool", "trigger"}):
        return GCP
    if keys <= _AZURE_KEYS and keys & _AZURE_BODY:
        for body in ("stages", "jobs", "steps", "phases"):
            value = data.get(body)
            if value is not None and not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                return None  # e.g. GitLab's `stages: [build, test]`
        return AZURE
    if "phases" in keys and isinstance(data["phases"], dict) and keys <= _BUILDSPEC_KEYS:
        return AWS
    return None


def walk(root: Path) -> Iterator[Path]:
    """Candidate files under a folder, in a stable order; skips VCS, virtualenv and cache folders."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            suffix = path.suffix.lower()
            if suffix in YAML_SUFFIXES or by_name(path) or by_infra_location(path):
                yield path
