from __future__ import annotations

import json
import subprocess
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops_gen.localci.command import ci


def make_repo(root: Path, files: dict[str, str], commit: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    if commit:
        subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
        subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)
        subprocess.run(["git", "-C", str(root), "-c", "user.email=t@example.com", "-c", "user.name=t",
                        "commit", "-q", "-m", "init"], check=True)
    return root


class Result:
    def __init__(self, code: int, output: str, report: dict | None):
        self.code, self.output, self.report = code, output, report

    def step(self, fragment: str) -> dict:
        found = [s for s in self.report["steps"] if fragment in s["name"]]
        assert found, f"no step matching {fragment!r} in {[s['name'] for s in self.report['steps']]}"
        return found[0]

    def status(self, fragment: str) -> str:
        return self.step(fragment)["status"]

    def log(self, fragment: str) -> str:
        return Path(self.step(fragment)["log"]).read_text()


@pytest.fixture
def run_ci():
    def run(repo: Path, provider: str, *args: str, venv: bool = False, env: dict | None = None) -> Result:
        argv = ["run", "--provider", provider, "--repo", str(repo), *args]
        if not venv:
            argv.append("--no-venv")
        out = CliRunner().invoke(ci, argv, env=env, catch_exceptions=False)
        report_path = repo / ".local-ci" / provider / "report.json"
        report = json.loads(report_path.read_text()) if report_path.exists() and out.exit_code != 2 else None
        return Result(out.exit_code, out.output, report)
    return run
