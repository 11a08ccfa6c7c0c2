"""`ci run` is sealed off from the user's real credentials and never shows a secret in clear.

The user's HOME here holds fake but well-formed credentials for AWS, gcloud and Docker, and the
environment holds fake tokens. A step then tries what an SDK would: read the files, and ask
boto3's and google-auth's own default credential chains."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from mlops_gen import venvs
from tests.localci.conftest import make_repo

SDKS = ["boto3==1.43.117", "google-auth==2.43.0"]
PROBE = """
import os, sys
import boto3, google.auth
from google.auth.exceptions import DefaultCredentialsError
creds = boto3.Session().get_credentials()
assert creds is None, f"boto3 found credentials: {creds.method}"
try:
    google.auth.default()
except DefaultCredentialsError:
    pass
else:
    sys.exit("google-auth found credentials")
home = os.path.expanduser("~")
for name in (".aws/credentials", ".config/gcloud/application_default_credentials.json", ".docker/config.json"):
    assert not os.path.exists(os.path.join(home, name)), name
print("no credentials found")
"""


@pytest.fixture(scope="module")
def sdk_python() -> str:
    return str(venvs.ensure(SDKS, label="sdk-probe") / "bin" / "python")


def _real_home(tmp_path: Path) -> Path:
    home = tmp_path / "real-home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(
        "[default]\naws_access_key_id = AKIAFAKEFAKEFAKEFAKE\naws_secret_access_key = fake/secret/key\n")
    adc = home / ".config" / "gcloud" / "application_default_credentials.json"
    adc.parent.mkdir(parents=True)
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "fake", "client_secret": "fake",
                               "refresh_token": "fake"}))
    (home / ".docker").mkdir()
    (home / ".docker" / "config.json").write_text('{"auths": {"example.com": {"auth": "ZmFrZTpmYWtl"}}}')
    return home


def test_steps_find_no_credentials_unless_allowed(tmp_path, run_ci, sdk_python):
    (tmp_path / "probe.py").write_text(PROBE)
    repo = make_repo(tmp_path / "r", {"buildspec.yml": f"""
        version: 0.2
        phases:
          build:
            commands:
              - {sdk_python} {tmp_path / "probe.py"}
              - test -z "${{GITHUB_TOKEN:-}}${{OPENAI_API_KEY:-}}${{DB_PASSWORD:-}}${{SSH_AUTH_SOCK:-}}"
              - test -n "$HOME" && test "$HOME" != "{tmp_path / 'real-home'}"
        """})
    env = {"HOME": str(_real_home(tmp_path)), "GITHUB_TOKEN": "ghp_fake", "OPENAI_API_KEY": "sk-fake",
           "DB_PASSWORD": "hunter2", "SSH_AUTH_SOCK": "/tmp/agent.sock", "AWS_PROFILE": "default"}
    sealed = run_ci(repo, "aws", env=env)
    assert sealed.code == 0, sealed.output + sealed.log("probe")
    assert "no credentials found" in sealed.log("probe")
    assert sealed.report["allow_cloud"] is False

    opened = run_ci(repo, "aws", "--allow-cloud", env=env)  # the user's own files and tokens again
    assert opened.code == 1
    assert "boto3 found credentials: shared-credentials-file" in opened.log("probe")
    assert opened.report["allow_cloud"] is True
    assert "--allow-cloud" in opened.output


def test_keep_env_passes_one_variable_through(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        phases:
          build:
            commands:
              - test "$GITHUB_TOKEN" = ghp_fake && test -z "${NPM_TOKEN:-}"
        """})
    env = {"GITHUB_TOKEN": "ghp_fake", "NPM_TOKEN": "npm_fake"}
    assert run_ci(repo, "aws", env=env).code == 1
    assert run_ci(repo, "aws", "--keep-env", "GITHUB_TOKEN", env=env).code == 0


def test_secret_values_are_masked_everywhere(tmp_path, run_ci):
    repo = make_repo(tmp_path / "r", {"buildspec.yml": """
        version: 0.2
        env:
          parameter-store:
            DB_PASS: /app/db/password
        phases:
          build:
            commands:
              - echo "connecting with $DB_PASS"
              - echo "$DB_PASS" > token.txt
              - echo "$DB_PASS" && false
        artifacts:
          files: [token.txt]
          name: out
        """})
    secrets = tmp_path / "secrets.yml"
    secrets.write_text("parameter-store: {/app/db/password: s3cr3t-Pa55}\n")
    run = run_ci(repo, "aws", "--secrets", str(secrets), "-v")
    assert run.code == 1
    assert "connecting with ***" in run.output
    out_dir = repo / ".local-ci" / "aws"
    written = [p for p in out_dir.rglob("*") if p.is_file()]
    assert any(p.name == "token.txt" for p in written) and len(written) >= 4
    for path in [*written]:
        assert "s3cr3t-Pa55" not in path.read_text(errors="replace"), path
    assert "s3cr3t-Pa55" not in run.output
    assert "connecting with ***" in run.log("connecting")
    for log in (out_dir / "logs").iterdir():
        assert stat.S_IMODE(log.stat().st_mode) == 0o600, log
