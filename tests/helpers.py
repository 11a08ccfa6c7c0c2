"""Shared helpers for tests: render the template the way a user would."""

from __future__ import annotations

from pathlib import Path

import copier

from mlops_gen import TEMPLATE_ROOT

# Offline cloud answers so that renders never depend on the environment.
DEFAULTS: dict[str, object] = {}


def render(dest: Path, **data: object) -> Path:
    """Render the working tree of this template into `dest` with defaults plus `data`."""
    copier.run_copy(
        str(TEMPLATE_ROOT),
        str(dest),
        data={**DEFAULTS, **data},
        defaults=True,
        unsafe=True,
        quiet=True,
        vcs_ref="HEAD",
    )
    return dest
