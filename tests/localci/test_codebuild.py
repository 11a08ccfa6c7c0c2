"""CodeBuild semantics on small crafted buildspecs."""

from __future__ import annotations

import pytest

from .conftest import make_repo

pytestmark = pytest.mark.xdist_group("localci")


def test_failed_build_still_runs_post_build_and_finally(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            commands:
              - echo building
              - exit 3
              - echo never
            finally:
              - echo "finally sees $CODEBUILD_BUILD_SUCCEEDING"
          post_build:
            commands:
              - echo "post_build sees $CODEBUILD_BUILD_SUCCEEDING"
        """})
    r = run_ci(repo, "aws")
    assert r.code == 1
    assert r.report["status"] == "failed"
    assert r.report["phases"] == {"build": "failed", "post_build": "passed"}
    assert r.status("exit 3") == "failed"
    assert r.status("echo never") == "skipped"
    assert "finally sees 0" in r.log("finally sees")
    assert "post_build sees 0" in r.log("post_build sees")


def test_failure_in_install_or_pre_build_skips_to_the_end(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          install:
            commands: [echo ok]
          pre_build:
            commands: ["false"]
          build:
            commands: [echo build]
          post_build:
            commands: [echo post]
        artifacts:
          files: ['**/*']
        """})
    r = run_ci(repo, "aws")
    assert r.code == 1
    assert r.report["phases"] == {"install": "passed", "pre_build": "failed", "build": "skipped",
                                  "post_build": "skipped"}
    assert "artifacts" not in r.report


def test_variables_and_cwd_persist_across_commands_and_phases(tmp_path, run_ci):
    # the repository's defaults for local runs (pyproject.toml) come before --var
    repo = make_repo(tmp_path / "r", {"pyproject.toml": """
        [tool.mlops-gen.ci-run.vars]
        aws = { DEPLOY_TARGET = "local", OVERRIDDEN = "pyproject" }
        """, "buildspec.yml": """
        version: 0.2
        env:
          variables:
            FROM_SPEC: spec
            OVERRIDDEN: spec
          exported-variables: [PLAIN, EXPORTED, MISSING]
        phases:
          install:
            commands:
              - mkdir -p sub && cd sub
              - export EXPORTED=one
              - PLAIN=two
          build:
            commands:
              - test "$(basename "$PWD")" = sub
              - test "$EXPORTED" = one && test "$PLAIN" = two
              - test "$FROM_SPEC" = spec && test "$OVERRIDDEN" = cli && test "$DEPLOY_TARGET" = local
              - test "$CODEBUILD_SRC_DIR" = "$(cd .. && pwd)"
              - test "$CODEBUILD_RESOLVED_SOURCE_VERSION" = "$(git -C "$CODEBUILD_SRC_DIR" rev-parse HEAD)"
        """})
    r = run_ci(repo, "aws", "--var", "OVERRIDDEN=cli")
    assert r.code == 0, r.output
    assert r.report["exported_variables"] == {"PLAIN": "two", "EXPORTED": "one", "MISSING": None}


def test_a_command_that_exits_the_shell_fails_and_state_survives(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            on-failure: CONTINUE
            commands:
              - export KEPT=yes && cd /tmp
              - exit 7
          post_build:
            commands:
              - test "$KEPT" = yes && test "$PWD" = /tmp
        """})
    r = run_ci(repo, "aws")
    assert r.code == 1
    assert r.step("exit 7")["exit_code"] == 7
    assert r.status("KEPT") == "passed"


def test_on_failure_continue_and_abort(tmp_path, run_ci):
    spec = """
        version: 0.2
        phases:
          install:
            on-failure: {action}
            commands: ["false"]
          build:
            commands: [echo build]
          post_build:
            commands: [echo post]
        """
    repo = make_repo(tmp_path / "c", {"buildspec.yml": spec.format(action="CONTINUE")})
    r = run_ci(repo, "aws")
    assert r.code == 1  # CONTINUE goes on, but the build has failed
    assert r.status("echo build") == "passed" and r.status("echo post") == "passed"

    repo = make_repo(tmp_path / "a", {"buildspec.yml": spec.format(action="ABORT")})
    r = run_ci(repo, "aws")
    assert r.code == 1
    assert r.status("echo build") == "skipped" and r.status("echo post") == "skipped"


def test_build_abort_skips_post_build(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            on-failure: ABORT
            commands: ["false"]
          post_build:
            commands: [echo post]
        """})
    r = run_ci(repo, "aws")
    assert r.code == 1 and r.status("echo post") == "skipped"


def test_retry_with_count_and_regex(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            on-failure: RETRY-3-flaky.*
            commands:
              - n=$(cat "$COUNTER" 2>/dev/null || echo 0); echo $((n+1)) > "$COUNTER"
              - if [ "$(cat "$COUNTER")" -lt 3 ]; then echo "flaky network"; exit 1; fi
        """})
    counter = tmp_path / "counter"
    r = run_ci(repo, "aws", "--var", f"COUNTER={counter}")
    assert r.code == 0, r.output
    assert r.report["phases"]["build"] == "passed"
    assert sum(1 for s in r.report["steps"] if "exit 1" in s["name"]) == 3

    repo2 = make_repo(tmp_path / "r2", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            on-failure: RETRY-5-only-this
            commands: ["echo something else; exit 1"]
        """})
    r = run_ci(repo2, "aws")
    assert r.code == 1
    assert len(r.report["steps"]) == 1  # the output does not match: no retry


def test_parameter_store_and_secrets_from_file_or_clear_error(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        env:
          parameter-store:
            DB_HOST: /app/db/host
          secrets-manager:
            TOKEN: app/creds:token
        phases:
          build:
            commands:
              - test "$DB_HOST" = db.local && test "$TOKEN" = t0k
        """})
    r = run_ci(repo, "aws")
    assert r.code == 2
    assert "/app/db/host" in r.output and "app/creds:token" in r.output
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("parameter-store: {/app/db/host: db.local}\nsecrets-manager: {app/creds: {token: t0k}}\n")
    r = run_ci(repo, "aws", "--secrets", str(secrets))
    assert r.code == 0, r.output


def test_copy_not_the_users_tree_and_credentials_scrubbed(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            commands:
              - test "$(cat dirty.txt)" = uncommitted
              - test -z "${AWS_SECRET_ACCESS_KEY:-}" && test -z "${GOOGLE_APPLICATION_CREDENTIALS:-}"
              - echo touched > written-by-build.txt
        artifacts:
          files: [written-by-build.txt]
          name: out
        reports:
          junit:
            files: ['*.txt']
        """})
    (repo / "dirty.txt").write_text("uncommitted\n")
    env = {"AWS_SECRET_ACCESS_KEY": "x", "GOOGLE_APPLICATION_CREDENTIALS": "/nope"}
    r = run_ci(repo, "aws", env=env)
    assert r.code == 0, r.output
    assert not (repo / "written-by-build.txt").exists()
    assert (repo / ".local-ci/aws/artifacts/out/written-by-build.txt").read_text() == "touched\n"
    assert "written-by-build.txt" in r.report["reports"]["junit"]["files"]
    r = run_ci(repo, "aws", "--allow-cloud", env=env)
    assert r.code == 1


def test_bad_files_exit_2_naming_the_problem(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": "version: 0.2\nphases:\n  compile:\n    commands: [ls]\n"})
    r = run_ci(repo, "aws")
    assert r.code == 2 and "compile" in r.output
    repo = make_repo(tmp_path / "r2", {"buildspec.yml": "version: 0.2\nphases:\n  build:\n    on-failure: RETRY-200\n"
                                                        "    commands: [ls]\n"})
    r = run_ci(repo, "aws")
    assert r.code == 2 and "on-failure" in r.output
