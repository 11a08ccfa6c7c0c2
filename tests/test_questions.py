"""copier.yml: every answer a user can type is validated with a message naming the question."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_gen.cli import main

INVALID = [
    ("package_name", "json", "would shadow"),
    ("package_name", "os", "would shadow"),
    ("package_name", "sklearn", "would shadow"),
    ("package_name", "class", "Python keyword"),
    ("package_name", "1abc", "Python identifier"),
    ("package_name", "My-Pkg", "Python identifier"),
    ("clouds", "[]", "at least one"),
    ("clouds", "[aws, oracle]", "'oracle' is not in"),
    ("task", "clustering", "is not in"),
    ("metric", "r2", "does not fit task"),
    ("metric_threshold", "1.5", "lies in [0, 1]"),
    ("metric_threshold", "-0.1", "lies in [0, 1]"),
    ("metric_threshold", "abc", "expected a number"),
    ("metric_threshold", "nan", "finite number"),
    ("metric_threshold", "-inf", "finite number"),
    ("package_name", "p" * 300, "at most 50 characters"),
    ("project_name", "x" * 81, "at most 80"),
    ("project_name", "invoice\u202egpj.exe", "bidi or zero-width"),
    ("project_name", "pay\u200bpal", "bidi or zero-width"),
    ("author_name", "\u2066team\u2069", "bidi or zero-width"),
    ("author_name", "a" * 101, "at most 100"),
    ("description", "d" * 201, "at most 200"),
    ("default_branch", "b" * 101, "at most 100"),
    ("project_name", "   ", "must not be empty"),
    ("project_name", "two\nlines", "one line"),
    ("description", "bell\x07", "without control"),
    ("default_branch", "feature..x", "not a valid git branch"),
    ("aws_region", "us-east", "not an AWS region"),
    ("aws_region", "US-EAST-1", "not an AWS region"),
    ("azure_location", "West Europe", "not an Azure location"),
    ("azure_resource_group", "rg.", "not ending in '.'"),
    ("azure_resource_group", "rg with space", "letters, digits"),
    ("azure_workspace", "ab", "3-33"),
    ("azure_workspace", "-abc", "3-33"),
    ("gcp_project_id", "My-Project", "lower-case"),
    ("gcp_project_id", "short", "6-30"),
    ("gcp_project_id", "ends-with-", "not ending with a hyphen"),
    ("gcp_region", "us_central1", "not a Google Cloud region"),
    ("python_version", "2.7", "is not in"),
    ("azure_ml_sdk", "v3", "is not in"),
    ("framework", "catboost", "is not in"),
    ("framework", "XGBoost", "is not in"),
    ("serving", "docker", "is not in"),
    ("isolation", "per-env", "is not in"),
    ("no_such_question", "x", "no such question"),
]


@pytest.mark.parametrize(("key", "value", "message"), INVALID)
def test_invalid_answer_is_one_line_exit_2_and_nothing_written(tmp_path: Path, key, value, message) -> None:
    dest = tmp_path / "project"
    result = CliRunner().invoke(main, ["new", str(dest), "--defaults", "--data", f"{key}={value}"])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {key}:"), lines[0]
    assert message in lines[0]
    assert not dest.exists()


VALID = [
    ("package_name", "churn_model"),
    ("metric", "roc_auc"),
    ("metric_threshold", "0.75"),
    ("aws_region", "ap-southeast-2"),
    ("aws_region", "us-gov-west-1"),
    ("azure_location", "eastus2"),
    ("azure_resource_group", "rg-ml_team.prod(1)"),
    ("gcp_project_id", "acme-ml-prod-42"),
    ("gcp_region", "northamerica-northeast1"),
    ("default_branch", "release/2026"),
]


@pytest.mark.parametrize(("key", "value"), VALID)
def test_valid_answers_render(tmp_path: Path, key, value) -> None:
    dest = tmp_path / "project"
    result = CliRunner().invoke(main, ["new", str(dest), "--defaults", "--data", f"{key}={value}"])
    assert result.exit_code == 0, result.output
    assert "Next steps" in result.output
    answers = (dest / ".copier-answers.yml").read_text()
    assert value in answers


# Answers that are wrong only together: the message names the question that settles it.
INVALID_TOGETHER = [
    # the prebuilt SageMaker/Vertex containers serve scikit-learn only
    (["framework=xgboost", "serving=prebuilt"], "serving", "cannot be served by the prebuilt"),
    (["framework=lightgbm", "serving=prebuilt", 'clouds=["gcp"]'], "serving", "cannot be served by the prebuilt"),
    (["serving=image", 'clouds=["azure"]', "azure_ml_sdk=v1"], "azure_ml_sdk", "cannot serve this repository's image"),
    (["isolation=multi", 'clouds=["azure"]', "azure_ml_sdk=v1", "azure_staging_subscription_id="
      "00000000-0000-0000-0000-000000000001", "azure_prod_subscription_id=00000000-0000-0000-0000-000000000002"],
     "isolation", "needs azure_ml_sdk v2"),
    # multi: an account id has no default, and staging and prod must differ
    (["isolation=multi", 'clouds=["aws"]'], "aws_staging_account_id", "required, it has no default"),
    (["isolation=multi", 'clouds=["aws"]', "aws_staging_account_id=12345"], "aws_staging_account_id", "12 digits"),
    (["isolation=multi", 'clouds=["aws"]', "aws_staging_account_id=123456789012", "aws_prod_account_id=123456789012"],
     "aws_prod_account_id", "must differ"),
    (["isolation=multi", 'clouds=["azure"]', "azure_staging_subscription_id=not-a-guid"],
     "azure_staging_subscription_id", "GUID"),
    (["isolation=multi", 'clouds=["gcp"]', "gcp_staging_project_id=my-ml-project-ml"], "gcp_staging_project_id",
     "must differ"),
]


@pytest.mark.parametrize(("data", "key", "message"), INVALID_TOGETHER, ids=[k for _, k, _ in INVALID_TOGETHER])
def test_answers_wrong_together_name_the_question_exit_2(tmp_path: Path, data: list[str], key: str, message: str) -> None:
    dest = tmp_path / "project"
    args = ["new", str(dest), "--defaults"] + [a for item in data for a in ("--data", item)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2, result.output
    assert result.stderr.strip().startswith(f"error: {key}:"), result.stderr
    assert message in result.stderr
    assert not dest.exists()


@pytest.mark.parametrize(("framework", "clouds", "expected"), [
    ("sklearn", "aws,azure,gcp", "prebuilt"),
    ("xgboost", "aws,azure,gcp", "image"),   # no prebuilt SageMaker/Vertex container loads its Pipeline
    ("xgboost", "azure", "prebuilt"),        # Azure ML serves it from an environment of pyproject.toml
    ("lightgbm", "azure", "image"),          # no cloud has a prebuilt LightGBM container
])
def test_serving_defaults_to_the_image_where_no_prebuilt_container_serves_the_framework(
        tmp_path: Path, framework: str, clouds: str, expected: str) -> None:
    dest = tmp_path / "project"
    result = CliRunner().invoke(main, ["new", str(dest), "--defaults", "--data", f"framework={framework}",
                                       "--data", f"clouds={clouds}"])
    assert result.exit_code == 0, result.output
    assert f"serving: {expected}" in (dest / ".copier-answers.yml").read_text()
    assert f"  mode: {expected}\n" in (dest / "mlops.yaml").read_text()


@pytest.mark.parametrize("framework", ["xgboost", "lightgbm"])
def test_a_framework_beyond_scikit_learn_renders_for_azure(tmp_path: Path, framework: str) -> None:
    dest = tmp_path / "project"
    result = CliRunner().invoke(main, ["new", str(dest), "--defaults", "--data", f"framework={framework}",
                                       "--data", 'clouds=["azure"]'])
    assert result.exit_code == 0, result.output
    assert f"framework: {framework}" in (dest / ".copier-answers.yml").read_text()


def test_new_refuses_a_non_empty_destination(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["new", str(tmp_path), "--defaults"])
    assert result.exit_code == 2
    assert (tmp_path / "keep.txt").read_text() == "mine"
    assert not (tmp_path / "mlops.yaml").exists()


def test_cloud_questions_are_asked_only_for_chosen_clouds(tmp_path: Path) -> None:
    import yaml

    dest = tmp_path / "p"
    assert CliRunner().invoke(main, ["new", str(dest), "--defaults", "-d", "clouds=[gcp]"]).exit_code == 0
    answers = yaml.safe_load((dest / ".copier-answers.yml").read_text())
    assert answers["clouds"] == ["gcp"] and "gcp_project_id" in answers
    assert not any(k.startswith(("aws_", "azure_")) for k in answers)
    # nothing secret is asked or recorded
    assert not any(word in key for key in answers for word in ("secret", "password", "token", "key"))


@pytest.mark.parametrize(("value", "files"), [("aws", {"buildspec.yml"}),
                                              ("aws,gcp", {"buildspec.yml", "cloudbuild.yaml"})])
def test_clouds_as_a_comma_separated_list(tmp_path: Path, value: str, files: set[str]) -> None:
    """`--data clouds=aws` is the natural spelling: a list, not a traceback."""
    dest = tmp_path / "repo"
    result = CliRunner().invoke(main, ["new", str(dest), "--defaults", "--data", f"clouds={value}"])
    assert result.exit_code == 0, result.output
    ci_files = {p.name for p in dest.iterdir()} & {"buildspec.yml", "azure-pipelines.yml", "cloudbuild.yaml"}
    assert ci_files == files
