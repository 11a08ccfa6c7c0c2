"""`fleet plan` changes nothing and predicts `update`; `fleet drift` finds edited files."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mlops_gen.fleet.command import fleet as fleet_cli
from tests.fleet.helpers import git, tree


def invoke(*args: str) -> tuple[int, dict]:
    report = Path(args[1]).parent / f"{args[0]}.json"
    result = CliRunner().invoke(fleet_cli, [*args, "--report", str(report)], catch_exceptions=False)
    return result.exit_code, {Path(r["path"]).name: r for r in json.loads(report.read_text())["repos"]}


def test_plan_changes_nothing_and_predicts_update(fleet: Path) -> None:
    names = sorted(p.name for p in fleet.iterdir())
    before = {name: tree(fleet / name) for name in names}
    heads = {name: git(fleet / name, "rev-parse", "HEAD") for name in names if (fleet / name / ".git").exists()}
    code, planned = invoke("plan", str(fleet), "--jobs", "2")
    assert code == 1                      # skipped repositories are reported
    assert {name: tree(fleet / name) for name in names} == before
    assert {name: git(fleet / name, "rev-parse", "HEAD") for name in heads} == heads
    assert all("template-update" not in git(fleet / name, "branch") for name in heads)
    same_line = planned["same-line"]["units"][0]
    assert (same_line["current"], same_line["target"]) == ("v1.0.0", "v2.0.0")
    assert same_line["added"] == ["docs/guide.md"] and same_line["conflicts"] == ["src/beta/main.py"]
    assert planned["pristine"]["units"][0]["removed"] == ["old.txt"]
    assert planned["dirty"]["status"] == "skipped"

    code, updated = invoke("update", str(fleet), "--jobs", "2")
    for name, repo in updated.items():
        for unit, predicted in zip(repo["units"], planned[name]["units"], strict=True):
            for key in ("added", "changed", "removed", "conflicts", "yaml_merged"):
                assert unit[key] == predicted[key], (name, key)


def test_drift(fleet: Path) -> None:
    code, repos = invoke("drift", str(fleet), "--jobs", "1")
    assert code == 1
    assert repos["pristine"]["status"] == "clean" and repos["current"]["status"] == "clean"
    assert repos["far-edit"]["units"][0]["drifted"] == ["README.md", "src/beta/main.py"]
    assert repos["deleted"]["units"][0]["removed"] == ["notes.md"]
    assert repos["dirty"]["units"][0]["drifted"] == ["README.md"]     # drift reads the working tree
    assert repos["not-git"]["status"] == "clean"                      # no git needed to compare
    assert repos["broken"]["status"] == "skipped" and repos["unknown-ref"]["status"] == "skipped"
    code, _ = invoke("drift", str(fleet / "pristine"))
    assert code == 0


def test_drift_diff(fleet: Path) -> None:
    result = CliRunner().invoke(fleet_cli, ["drift", str(fleet / "far-edit"), "--diff"])
    assert result.exit_code == 1
    assert "+    return 100  # mine" in result.output and "-    return 1" in result.output
