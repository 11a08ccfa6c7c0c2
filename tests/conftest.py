import os
from pathlib import Path

import pytest

# Tests render the template's working tree; copier's notes about it are noise here.
os.environ.setdefault("PYTHONWARNINGS", "ignore::UserWarning")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The slow tests (minutes each: a generated repo's suite, a local CI run) first, in their order: xdist
    hands out work in this order, so they spread over the workers from the start and the many short
    tests fill the gaps, rather than one of them starting last on a worker while the other is idle."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


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
