import os
from pathlib import Path

import pytest

# Tests render the template's working tree; copier's notes about it are noise here.
os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")


@pytest.fixture(scope="session")
def rendered(tmp_path_factory):
    """rendered(**answers) -> a render of the template, made once per session (per xdist worker) for
    the same answers. Read-only: a test that changes the tree works on a copy (shutil.copytree)."""
    import json

    from tests.helpers import render

    cache: dict[str, Path] = {}

    def get(**answers: object) -> Path:
        key = json.dumps(answers, sort_keys=True)
        if key not in cache:
            cache[key] = render(tmp_path_factory.mktemp("rendered") / "repo", **answers)
        return cache[key]

    return get
