"""Every rendered combination of the template passes `mlops-gen validate --strict` with no finding.

Runs over whatever CI files the render produces (buildspec.yml, azure-pipelines.yml,
cloudbuild.yaml, infra/aws, infra/gcp), so it keeps guarding them as the cloud templates land.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from tests.validate.conftest import run_validate

CLOUDS = ("aws", "azure", "gcp")
SUBSETS = [list(c) for n in range(1, 4) for c in itertools.combinations(CLOUDS, n)]
COMBINATIONS = [None, *SUBSETS]  # None: copier's defaults


@pytest.mark.parametrize("clouds", COMBINATIONS, ids=["default"] + ["+".join(s) for s in SUBSETS])
def test_rendered_repo_is_clean(rendered, clouds):
    data = {} if clouds is None else {"clouds": clouds}
    repo = rendered(**data)
    run = run_validate(repo, "--strict")
    assert run.findings == [], run.output
    assert run.code == 0
    ci_files = {Path(p).name for p in run.doc["files"]}
    expected = {"aws": "buildspec.yml", "azure": "azure-pipelines.yml", "gcp": "cloudbuild.yaml"}
    for cloud in clouds or CLOUDS:
        assert (repo / expected[cloud]).is_file(), f"{expected[cloud]} was not rendered"
        assert expected[cloud] in ci_files
