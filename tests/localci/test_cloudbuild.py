"""Cloud Build semantics on small crafted configs."""

from __future__ import annotations

import pytest

from .conftest import make_repo

pytestmark = pytest.mark.xdist_group("localci")

STAMP = "python3 -c 'import time; print(time.time())'"


def _stamps(log: str) -> tuple[float, float]:
    values = [float(line) for line in log.splitlines() if line.replace(".", "", 1).isdigit()]
    return values[0], values[-1]


def test_wait_for_dash_steps_overlap_and_default_is_sequential(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": f"""
        steps:
          - id: a
            name: python:3.11
            entrypoint: bash
            args: ['-c', "{STAMP}; sleep 1; {STAMP}"]
            waitFor: ['-']
          - id: b
            name: python
            entrypoint: bash
            args: ['-c', "{STAMP}; sleep 1; {STAMP}"]
            waitFor: ['-']
          - id: c
            name: python
            entrypoint: bash
            args: ['-c', "{STAMP}"]
          - id: d
            name: python
            entrypoint: bash
            args: ['-c', "{STAMP}"]
            waitFor: [a]
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 0, r.output
    a0, a1 = _stamps(r.log("a"))
    b0, b1 = _stamps(r.log("b"))
    c0, _ = _stamps(r.log("c"))
    d0, _ = _stamps(r.log("d"))
    assert a0 < b1 and b0 < a1  # a and b ran at the same time
    assert c0 >= max(a1, b1)  # c waited for every earlier step
    assert d0 >= a1


def test_substitutions_builtins_escapes_and_overrides(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"pyproject.toml": """
        [tool.mlops-gen.ci-run.vars]
        gcp = { _DEPLOY_TARGET = "local", _UNUSED_DEFAULT = "only where used" }
        """, "cloudbuild.yaml": """
        substitutions:
          _DEPLOY_TARGET: gcp
          _GREETING: hello
        steps:
          - name: python
            entrypoint: bash
            args:
              - -c
              - |
                set -eu
                test "${_DEPLOY_TARGET}" = local
                test "$_GREETING" = hello
                test "$SHORT_SHA" = "$$(git rev-parse --short=7 HEAD)"
                test "$COMMIT_SHA" = "$$(git rev-parse HEAD)" && test "$BRANCH_NAME" = main
                test "$PROJECT_ID" = my-proj
                test "$REPO_NAME" = r
                LOCAL=bash-variable; test "$$LOCAL" = bash-variable
        """})
    r = run_ci(repo, "gcp", "--var", "PROJECT_ID=my-proj")
    assert r.code == 0, r.output
    assert r.report["substitutions"]["_DEPLOY_TARGET"] == "local"


def test_must_match_fails_on_missing_and_unused_substitutions(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": """
        substitutions:
          _UNUSED: x
        steps:
          - name: python
            args: [echo, $_MISSING, $HOME]
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 2
    assert '"_MISSING"' in r.output and '"HOME"' in r.output and '"_UNUSED"' in r.output


def test_allow_loose_leaves_missing_substitutions_empty(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": """
        substitutions:
          _UNUSED: x
        steps:
          - name: python
            entrypoint: bash
            args: ['-c', 'test -z "$_MISSING"']
        options:
          substitutionOption: ALLOW_LOOSE
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 0, r.output


def test_script_env_dir_and_secret_env(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": """
        steps:
          - name: python:3.11-slim
            dir: sub/dir
            env: ['MODE=${_MODE}']
            secretEnv: [TOKEN]
            script: |
              #!/usr/bin/env bash
              set -euo pipefail
              test "$MODE" = fast && test "$TOKEN" = s3cr3t
              test "$(basename "$PWD")" = dir
        substitutions:
          _MODE: fast
        availableSecrets:
          secretManager:
            - versionName: projects/$PROJECT_ID/secrets/api-token/versions/latest
              env: TOKEN
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 2 and "api-token" in r.output
    secrets = tmp_path / "s.yml"
    secrets.write_text("secret-manager:\n  api-token: s3cr3t\n")
    r = run_ci(repo, "gcp", "--secrets", str(secrets))
    assert r.code == 0, r.output


def test_unmapped_builder_image_is_a_clear_error_and_map_image_runs_it(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": """
        steps:
          - name: gcr.io/cloud-builders/gcloud
            args: [--version]
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 2 and "gcr.io/cloud-builders/gcloud" in r.output and "--map-image" in r.output
    r = run_ci(repo, "gcp", "--map-image", "gcr.io/cloud-builders/gcloud=echo")
    assert r.code == 0, r.output
    assert "--version" in r.log("#0")


def test_a_failing_step_fails_the_build_and_nothing_after_it_runs(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": """
        steps:
          - id: ok
            name: python
            args: [python, -c, 'print(1)']
          - id: gate
            name: python
            args: [python, -c, 'raise SystemExit(1)']
          - id: deploy
            name: python
            args: [python, -c, 'print(2)']
          - id: tolerated
            name: python
            args: [python, -c, 'raise SystemExit(3)']
            allowFailure: true
            waitFor: ['-']
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 1
    assert r.status("ok") == "passed" and r.status("gate") == "failed"
    assert r.status("deploy") == "skipped"
    assert r.report["failed_steps"] == ["gate"]


def test_background_processes_end_with_their_step(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"cloudbuild.yaml": """
        steps:
          - id: start
            name: python
            entrypoint: bash
            args: ['-c', 'setsid sleep 60 >/dev/null 2>&1 & echo $$! > $$BUILDER_OUTPUT/pid']
          - id: check
            name: python
            entrypoint: bash
            args: ['-c', 'p=$$(cat $$BUILDER_OUTPUT/pid); ! kill -0 $$p 2>/dev/null || grep -q ") Z" /proc/$$p/stat']
        """})
    r = run_ci(repo, "gcp")
    assert r.code == 0, r.output
