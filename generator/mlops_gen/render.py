"""Rendering the template from Python (shared by `examples`, `demo` and the tests)."""

from __future__ import annotations

from pathlib import Path

from mlops_gen import TEMPLATE_ROOT, copier_seam


def render(dest: Path, data: dict | None = None, template: Path = TEMPLATE_ROOT, vcs_ref: str | None = "HEAD") -> Path:
    """Render `template` (a checkout's working tree, uncommitted changes included) into `dest`.

    `vcs_ref` applies to a git checkout only; the template packaged in the wheel is a plain folder.
    """
    copier_seam.copy(template, dest, data=data or {}, defaults=True,
                     vcs_ref=vcs_ref if (template / ".git").exists() else None)
    return dest
