"""The command's contract: output format, sorting, exit codes, options and configuration."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from mlops_gen.validate.command import validate
from mlops_gen.validate.rules import RULES
from tests.validate.conftest import run_validate

GOOD_BS = "version: 0.2\nenv:\n  shell: bash\nphases:\n  build:\n    commands:\n      - make test\n"
# bs-default-shell: a bash feature (set -o pipefail) without env.shell
WARN_BS = "version: 0.2\nphases:\n  build:\n    commands:\n      - set -o pipefail\n"


def _text(*args: str):
    return CliRunner().invoke(validate, list(map(str, args)))


def test_clean_file_exits_0(tmp_path: Path):
    (tmp_path / "buildspec.yml").write_text(GOOD_BS)
    result = _text(tmp_path / "buildspec.yml")
    assert result.exit_code == 0
    assert result.stdout == ""


def test_text_format_is_path_line_col_rule_message_sorted(tmp_path: Path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "buildspec.yml").write_text(
        "version: 0.2\nenv:\n  shell: bash\n  variables:\n    CODEBUILD_A: x\nphases:\n  build:\n"
        "    commands:\n      - echo a: b\n")
    (tmp_path / "a-azure-pipelines.yml").write_text("steps:\n  - task: CopyFile@2\n")
    result = _text(tmp_path)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines == sorted(lines, key=lambda s: (s.split(":")[0], int(s.split(":")[1])))
    assert lines[0].startswith(f"{tmp_path / 'a-azure-pipelines.yml'}:2:5: az-unknown-task: ")
    assert any(line.startswith(f"{tmp_path / 'b' / 'buildspec.yml'}:5:5: bs-reserved-variable: ") for line in lines)
    assert any(":9:9: bs-command-mapping: " in line for line in lines)


def test_warnings_exit_0_unless_strict(tmp_path: Path):
    path = tmp_path / "buildspec.yml"
    path.write_text(WARN_BS)
    relaxed = _text(path)
    assert relaxed.exit_code == 0
    assert "bs-default-shell: warning: " in relaxed.stdout
    assert _text(path, "--strict").exit_code == 1


def test_notes_never_fail(tmp_path: Path):
    path = tmp_path / "buildspec.yml"
    path.write_text(GOOD_BS.replace("make test", "rm -rf build || true"))
    result = _text(path, "--strict")
    assert result.exit_code == 0
    assert "shell-ignore-failure: note: " in result.stdout
    assert "0 error(s), 0 warning(s), 1 note(s) (strict)" in result.stderr


def test_json_format(tmp_path: Path):
    path = tmp_path / "buildspec.yml"
    path.write_text(WARN_BS)
    doc = json.loads(_text(path, "--format", "json").stdout)
    assert doc["summary"] == {"errors": 0, "warnings": 1, "notes": 0}
    assert doc["findings"][0] == {"path": str(path), "line": 5, "col": 9, "rule": "bs-default-shell",
                                  "message": doc["findings"][0]["message"], "severity": "warning"}


def test_missing_path_is_bad_usage(tmp_path: Path):
    result = _text(tmp_path / "nope.yml")
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_unreadable_input_exits_2(tmp_path: Path):
    path = tmp_path / "buildspec.yml"
    path.write_bytes(b"version: 0.2\n\xff\xfe\n")
    result = _text(path)
    assert result.exit_code == 2
    assert "not UTF-8" in result.stderr


def test_no_paths_is_bad_usage():
    assert _text().exit_code == 2


def test_unknown_rule_in_disable_is_bad_usage(tmp_path: Path):
    assert _text(tmp_path, "--disable", "no-such-rule").exit_code == 2


def test_list_rules_lists_every_rule():
    result = _text("--list-rules")
    assert result.exit_code == 0
    for rule in RULES.values():
        assert rule.id in result.stdout and rule.doc in result.stdout


def test_disable_and_allow_task(tmp_path: Path):
    path = tmp_path / "azure-pipelines.yml"
    path.write_text("steps:\n  - task: acme.tools.Deploy@1\n  - task: MyCompanyTask@3\n")
    assert run_validate(path).rules() == {"az-extension-task", "az-custom-task"}
    allowed = run_validate(path, "--allow-task", "acme.*", "--allow-task", "mycompanytask@*")
    assert allowed.findings == [] and allowed.code == 0
    assert run_validate(path, "--disable", "az-custom-task", "--disable", "az-extension-task").code == 0


def test_pyproject_configuration(tmp_path: Path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.mlops-gen.validate]\nallow-tasks = ["MyCompanyTask@3"]\nstrict = true\n')
    (tmp_path / "azure-pipelines.yml").write_text("steps:\n  - task: MyCompanyTask@3\n")
    (tmp_path / "buildspec.yml").write_text(WARN_BS)
    monkeypatch.chdir(tmp_path)
    run = run_validate(tmp_path)
    assert run.rules() == {"bs-default-shell"}
    assert run.code == 1  # strict from pyproject


def test_bad_pyproject_configuration_is_bad_usage(tmp_path: Path, monkeypatch):
    (tmp_path / ".git").mkdir()
    (tmp_path / "pyproject.toml").write_text('[tool.mlops-gen.validate]\nallow-task = ["x"]\n')
    monkeypatch.chdir(tmp_path)
    result = _text(tmp_path)
    assert result.exit_code == 2
    assert "allow-task" in result.stderr


def test_folder_finds_ci_files_by_content_and_skips_others(tmp_path: Path):
    (tmp_path / "ci").mkdir()
    (tmp_path / "ci" / "release.yml").write_text("steps:\n  - name: ubuntu\n    args: [echo, hi]\n")
    (tmp_path / "ci" / "spec.yaml").write_text(GOOD_BS)
    (tmp_path / "mlops.yaml").write_text("data:\n  path: x\n")
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "w.yml").write_text("on: push\njobs:\n  a:\n    runs-on: x\n    steps: []\n")
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "buildspec.yml").write_text("broken: [")
    run = run_validate(tmp_path)
    assert sorted(Path(p).name for p in run.doc["files"]) == ["release.yml", "spec.yaml"]
    assert run.code == 0


def test_forced_dialect(tmp_path: Path):
    path = tmp_path / "pipeline.yml"
    path.write_text("steps:\n  - script: echo hi\n")
    assert run_validate(path).code == 0  # detected as Azure by content
    assert "gcb-schema" in run_validate(path, "--dialect", "gcp").rules()


def test_snake_case_cloud_build_options_are_accepted(tmp_path: Path):
    path = tmp_path / "cloudbuild.yaml"
    path.write_text("steps:\n  - name: ubuntu\n    args: [echo, $_X]\noptions:\n  substitution_option: ALLOW_LOOSE\n"
                    "  dynamic_substitutions: true\n")
    run = run_validate(path, "--strict")
    assert run.findings == []


def test_azure_scalars_are_read_as_azure_reads_them(tmp_path: Path):
    path = tmp_path / "azure-pipelines.yml"
    path.write_text(
        "trigger:\n  batch: True\n  paths:\n    include: [docs/]\nschedules:\n  - cron: '0 0 * * *'\n"
        "    branches: {include: [main]}\n    always: true\njobs:\n  - job: a\n    timeoutInMinutes: 0\n"
        "    strategy:\n      maxParallel: 3\n      matrix:\n        ${{ insert }}: ${{ parameters.matrix }}\n"
        "    steps:\n      - task: UsePythonVersion@0\n        inputs: {versionSpec: 3.8}\n"
        "      - task: PublishBuildArtifacts@1\n        inputs: {pathtoPublish: out, artifactName: a}\n"
        "      - script: echo\n        failOnStderr: True\n        condition: true\n")
    run = run_validate(path, "--strict")
    assert run.findings == [], run.output


def test_the_script_exits_with_the_code_and_all_its_output_through_a_pipe(tmp_path: Path):
    """`python -m mlops_gen` (like the `mlops-gen` script) ends validate without the interpreter's
    teardown: the exit codes and every line of output, more than a pipe's buffer, still arrive."""
    import subprocess
    import sys

    commands = "".join(f"      - make test{i} || true\n" for i in range(2000))  # a note each
    (tmp_path / "noted" / "buildspec.yml").parent.mkdir()
    (tmp_path / "noted" / "buildspec.yml").write_text(GOOD_BS + commands)
    (tmp_path / "buildspec.yml").write_text(WARN_BS)

    def script(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "mlops_gen", "validate", *map(str, args)],
                              capture_output=True, text=True, timeout=120, check=False)

    noted = script("--strict", "--format", "json", tmp_path / "noted" / "buildspec.yml")
    assert noted.returncode == 0 and len(noted.stdout) > 65536
    assert json.loads(noted.stdout)["summary"]["notes"] == 2000
    warned = script("--strict", tmp_path / "buildspec.yml")
    assert warned.returncode == 1 and "bs-default-shell" in warned.stdout and "1 warning(s)" in warned.stderr
    missing = script(tmp_path / "nothing.yml")
    assert missing.returncode == 2 and "no such file or directory" in missing.stderr
