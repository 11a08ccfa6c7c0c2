"""Shared helpers for tests: render the template the way a user would, run a generated repo."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mlops_gen import venvs
from mlops_gen.render import render as _render


def render(dest: Path, **data: object) -> Path:
    """Render the working tree of this template into `dest` with defaults plus `data`."""
    return _render(dest, data)


def project_python(repo: Path, extras: list[str], label: str, python: str | None = None) -> Path:
    """A cached venv with the generated repo's dependencies (the repo itself goes on PYTHONPATH), on this
    interpreter's Python unless `python` names another version (found on the machine by uv)."""
    env = venvs.ensure(venvs.project_requirements(repo / "pyproject.toml", extras), python=python, label=label)
    return env / "bin" / "python"


def run_generated_tests(repo: Path, python: Path, *pytest_args: str, timeout: int = 900):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AZURE_", "ARM_", "GOOGLE_", "CLOUDSDK_"))}
    env["PYTHONPATH"] = str(repo / "src")
    env["PATH"] = f"{python.parent}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        # -n 0: this suite already runs on every core; the generated suite's own `-n auto` would double that
        [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0", *pytest_args],
        cwd=repo, env=env, capture_output=True, text=True, timeout=timeout,
    )
