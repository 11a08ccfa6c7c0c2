"""The environment every step starts from: sealed off from the user's real credentials.

Dropping `AWS_*` and friends from the environment is not enough: every cloud SDK also reads
credential files under HOME (~/.aws/credentials, gcloud's application-default credentials,
~/.azure, ~/.kube/config, ~/.docker/config.json, ~/.netrc) and asks the instance metadata
service. So steps get a fresh HOME inside the run's scratch folder, every SDK's config
location is pointed at an empty place, metadata lookups are switched off, and variables whose
names look like credentials are dropped. Only the package caches are re-pointed explicitly at
the user's own, so installs stay fast. `--allow-cloud` turns all of this off (a deliberate
run against a real account); `--keep-env NAME` passes single variables through.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

CLOUD_PREFIXES = ("AWS_", "AZURE_", "ARM_", "GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCE_")
# *_TOKEN, *_SECRET*, *_API_KEY, *PASSWORD*, … (GITHUB_TOKEN, NPM_TOKEN, OPENAI_API_KEY, PGPASSWORD)
_CREDENTIAL_NAME = re.compile(r"TOKEN|SECRET|API_?KEY|PASSWORD|PASSWD|CREDENTIAL|PRIVATE_KEY|AUTH", re.IGNORECASE)
# Not credentials by name, but each hands a step the user's identity somewhere.
IDENTITY_VARS = ("SSH_AUTH_SOCK", "KUBECONFIG", "DOCKER_CONFIG", "NETRC", "GIT_ASKPASS", "SSH_ASKPASS",
                 "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_RUNTIME_DIR")
# Variables that would make the steps use another interpreter or environment than ours.
PYTHON_LEAKS = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX", "PIP_REQUIRE_VIRTUALENV")


def is_credential(name: str) -> bool:
    return name.startswith(CLOUD_PREFIXES) or name in IDENTITY_VARS or bool(_CREDENTIAL_NAME.search(name))


def _cache(name: str, env: dict[str, str], var: str) -> str:
    """The user's real cache folder for a package tool (where it looks with the real HOME)."""
    if env.get(var):
        return env[var]
    base = env.get("XDG_CACHE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".cache")
    return str(Path(base) / name)


def sealed_environ(home: Path, *, allow_cloud: bool = False, keep: tuple[str, ...] = (),
                   base: dict[str, str] | None = None) -> dict[str, str]:
    """The base environment of every step; `home` is created (0700) as the steps' HOME."""
    env = dict(os.environ if base is None else base)
    kept = {k for k in env if any(fnmatch.fnmatchcase(k, pattern) for pattern in keep)}
    for key in list(env):
        if key in PYTHON_LEAKS or (not allow_cloud and key not in kept and is_credential(key)):
            del env[key]
    if allow_cloud:
        return env
    caches = {"UV_CACHE_DIR": _cache("uv", env, "UV_CACHE_DIR"), "PIP_CACHE_DIR": _cache("pip", env, "PIP_CACHE_DIR")}
    home.mkdir(mode=0o700, parents=True, exist_ok=True)
    empty = home / ".no-credentials"  # stays empty: every SDK looks here and finds nothing
    empty.mkdir(mode=0o700, exist_ok=True)
    env.update(caches)
    # The tool environments `uvx` makes (the CI files' validator) get their bytecode when they are made:
    # where Python may not write .pyc files (PYTHONDONTWRITEBYTECODE, as on this project's CI machines),
    # every later run compiled cfn-lint, SymPy and the rest again (validate --strict: 6 s instead of 2.5 s).
    env.setdefault("UV_COMPILE_BYTECODE", "1")
    env.update({
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "AWS_CONFIG_FILE": str(empty / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(empty / "aws-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",  # no instance-profile lookup
        "CLOUDSDK_CONFIG": str(empty / "gcloud"),  # gcloud and google-auth's application-default file
        "NO_GCE_CHECK": "True",  # google-auth: do not probe the metadata server
        "GCE_METADATA_HOST": "127.0.0.1:9",  # and if it does, nothing answers (discard port)
        "GCE_METADATA_IP": "127.0.0.1:9",
        "AZURE_CONFIG_DIR": str(empty / "azure"),
        "KUBECONFIG": str(empty / "kubeconfig"),
        "DOCKER_CONFIG": str(empty / "docker"),
        "GIT_CONFIG_GLOBAL": str(empty / "gitconfig"),  # no credential helper of the user's
        "GIT_TERMINAL_PROMPT": "0",
    })
    for name in kept:  # an explicit pass-through wins over the empty location
        env[name] = os.environ[name] if base is None else base[name]
    return env
