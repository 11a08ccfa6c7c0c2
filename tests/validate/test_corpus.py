"""Real CI files written by other people: valid ones pass, invalid ones are rejected."""

from __future__ import annotations

import re

import pytest

from tests.validate.conftest import CORPUS, run_validate

VALID = CORPUS / "real-ci"
INVALID = CORPUS / "real-ci-invalid"


def test_the_corpus_is_there() -> None:
    """A missing corpus fails (nothing below may pass on an empty folder)."""
    assert len(list(VALID.rglob("*.y*ml"))) >= 40 and (VALID / "SOURCES.md").is_file()

# Files VERDICTS.md marks "unsure": accepted, with the warning that explains the doubt.
UNSURE = {
    "aws__aws-sdk-java-v2__buildspecs__release-javadoc.yml": "bs-command-empty",
    "google__exposure-notifications-server__builders__migrate.yaml": "gcb-substitution-null",
}
# Invalid files: the rule that must reject each, and the line it must point at.
EXPECTED = {
    "Azure__azure-sdk-tools__eng__common__pipelines__templates__steps__sparse-checkout.yml": ("az-condition", 37),
    "Azure__mlops-v2__mlops__devops-pipelines__deploy-model-training-pipeline.yml": ("az-template-macro", 30),
    "MicrosoftDocs__mslearn-tailspin-spacegame-web-deploy__azure-pipelines.yml": ("yaml-syntax", 68),
    "GoogleCloudPlatform__cloud-build-samples__sql-private-pool__cloudbuild.yaml": ("gcb-unknown-substitution", 48),
    "GoogleCloudPlatform__training-data-analyst__courses__machine_learning__deepdive2__production_ml__labs__samples"
    "__contrib__versioned-pipeline-ci-samples__mnist-ci-sample__cloudbuild.yaml": ("gcb-proto", 104),
}


def _valid_in_verdicts() -> set[str]:
    text = (VALID / "VERDICTS.md").read_text(encoding="utf-8")
    return set(re.findall(r"^\| `([^`]+)` \| real-ci \|", text, re.MULTILINE))


def test_whole_corpus_in_one_call():
    run = run_validate(VALID)
    assert run.code == 0, [f for f in run.findings if f["severity"] == "error"]
    checked = {p.rsplit("/", 1)[-1] for p in run.doc["files"]}
    assert _valid_in_verdicts() <= checked  # every file is found by name or by content


@pytest.mark.parametrize("name", sorted(UNSURE))
def test_unsure_files_pass_with_the_explaining_warning(name):
    path = next(VALID.rglob(name))
    run = run_validate(path)
    assert run.code == 0
    assert UNSURE[name] in run.rules()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_invalid_files_are_rejected_at_the_right_line(name):
    path = next(INVALID.rglob(name))
    run = run_validate(path)
    rule, line = EXPECTED[name]
    assert run.code == 1
    assert any(f["rule"] == rule and f["line"] == line and f["severity"] == "error" for f in run.findings), run.output


def test_every_invalid_file_has_an_expectation():
    assert {p.name for p in INVALID.rglob("*.y*ml")} == set(EXPECTED)
