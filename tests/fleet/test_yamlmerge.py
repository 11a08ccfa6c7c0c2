"""The structure-aware YAML merge: both sides' changes kept, comments kept, real conflicts left."""

from __future__ import annotations

import yaml

from mlops_gen.fleet.yamlmerge import merge_yaml

CLOUDBUILD = """\
# Cloud Build: train, gate, deploy
substitutions:
  _DEPLOY_TARGET: gcp  # the one switch
  _REGION: europe-west1
steps:
  - id: install
    name: python:3.11
    entrypoint: bash
    args: [-c, "pip install ."]
  - id: train
    name: python:3.11
    args: [-m, pkg, train]
  - id: deploy
    name: python:3.11
    args: [-m, pkg, deploy]
timeout: 1800s
"""


def merge(old: str, user: str, new: str) -> str | None:
    out = merge_yaml(old.encode(), user.encode(), new.encode())
    return None if out is None else out.decode()


def test_steps_merged_by_id_keep_comments() -> None:
    user = CLOUDBUILD.replace("  _REGION: europe-west1\n", "  _REGION: us-central1  # our region\n") \
        .replace("    args: [-m, pkg, train]\n", "    args: [-m, pkg, train, --epochs, '5']\n")
    new = CLOUDBUILD.replace("  - id: deploy\n", "  - id: gate\n    name: python:3.11\n    args: [-m, pkg, gate]\n"
                             "  - id: deploy\n").replace("timeout: 1800s\n", "timeout: 3600s\n")
    out = merge(CLOUDBUILD, user, new)
    assert out is not None
    data = yaml.safe_load(out)
    assert [s["id"] for s in data["steps"]] == ["install", "train", "gate", "deploy"]
    assert data["steps"][1]["args"] == ["-m", "pkg", "train", "--epochs", "5"]
    assert data["timeout"] == "3600s" and data["substitutions"]["_REGION"] == "us-central1"
    assert "# our region" in out and "# the one switch" in out and out.startswith("# Cloud Build")


def test_same_key_changed_on_both_sides_is_a_conflict() -> None:
    user = CLOUDBUILD.replace("_REGION: europe-west1", "_REGION: us-east1")
    new = CLOUDBUILD.replace("_REGION: europe-west1", "_REGION: asia-east1")
    assert merge(CLOUDBUILD, user, new) is None


def test_step_removed_by_template_but_edited_by_user_is_a_conflict() -> None:
    user = CLOUDBUILD.replace("args: [-m, pkg, deploy]", "args: [-m, pkg, deploy, --canary]")
    new = CLOUDBUILD.replace("  - id: deploy\n    name: python:3.11\n    args: [-m, pkg, deploy]\n", "")
    assert merge(CLOUDBUILD, user, new) is None


def test_items_appended_on_both_sides_keep_both_user_first() -> None:
    base = "phases:\n  build:\n    commands:\n      - make train\n      - make test\n"
    user = base + "      - make lint\n"
    new = base + "      - make deploy\n"
    out = merge(base, user, new)
    assert out is not None
    assert yaml.safe_load(out)["phases"]["build"]["commands"] == ["make train", "make test", "make lint",
                                                                  "make deploy"]


def test_positional_list_change_next_to_user_change_is_a_conflict() -> None:
    base = "commands:\n  - make train\n  - make test\n"
    user = "commands:\n  - make train\n  - make test-all\n"
    new = "commands:\n  - make train\n  - make test\n  - make deploy\n"
    assert merge(base, user, new) is None


def test_untouched_blocks_keep_their_exact_text() -> None:
    base = "a:   {x: 1}   # odd spacing\nb:\n  c: 1\n  d: 2\n"
    user = "a:   {x: 1}   # odd spacing\nb:\n  c: 10\n  d: 2\n"
    new = "a:   {x: 1}   # odd spacing\nb:\n  c: 1\n  d: 20\n"
    assert merge(base, user, new) == "a:   {x: 1}   # odd spacing\nb:\n  c: 10\n  d: 20\n"


def test_not_a_mapping_or_not_yaml_gives_up() -> None:
    assert merge("- a\n", "- b\n", "- c\n") is None
    assert merge("a: 1\n", "a: [\n", "a: 2\n") is None
