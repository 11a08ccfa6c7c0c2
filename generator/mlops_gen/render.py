"""Rendering the template from Python (shared by `examples`, `demo` and the tests)."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path

from mlops_gen import TEMPLATE_ROOT


def render(dest: Path, data: dict | None = None, template: Path = TEMPLATE_ROOT, vcs_ref: str = "HEAD") -> Path:
    """Render `template` (its working tree, uncommitted changes included) into `dest`.

    The generated repo's CI gets mlops-gen from this checkout, not from a commit: uncommitted
    changes are rendered, and copier's commit of them exists only in its temporary clone.
    """
    import copier

    data = {"mlops_gen_requirement": f"mlops-gen @ {template.resolve().as_uri()}", **(data or {})}
    with warnings.catch_warnings(), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        copier.run_copy(
            str(template), str(dest), data=data, defaults=True, unsafe=True, quiet=True, vcs_ref=vcs_ref
        )
    return dest
