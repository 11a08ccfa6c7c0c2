"""Git hosts as fleet sources: `github:ORG`, `gitlab:GROUP`, `azure:ORG/PROJECT`, `bitbucket:WORKSPACE`.

- `base`       the HTTP layer (retries, rate limits, token kept out of messages) and the `Host` contract
- `github`, `gitlab`, `azure`, `bitbucket`   one client each: list, read the answers file, requests
"""

from __future__ import annotations

import re

from mlops_gen.fleet.hosts.azure import Azure
from mlops_gen.fleet.hosts.base import (
    AuthError,
    Host,
    HostError,
    Proposal,
    RemoteRepo,
    UpdateRequest,
    token_from_env,
)
from mlops_gen.fleet.hosts.bitbucket import Bitbucket
from mlops_gen.fleet.hosts.github import GitHub
from mlops_gen.fleet.hosts.gitlab import GitLab

HOSTS: dict[str, type[Host]] = {h.kind: h for h in (GitHub, GitLab, Azure, Bitbucket)}
_SOURCE = re.compile(r"^(github|gitlab|azure|bitbucket):(.+)$")

__all__ = ["HOSTS", "AuthError", "Host", "HostError", "Proposal", "RemoteRepo", "UpdateRequest", "connect",
           "is_host_source"]


def is_host_source(text: str) -> bool:
    return bool(_SOURCE.match(text))


def connect(source: str, api_url: str | None) -> Host:
    """The client for `source`, with its token from the environment (AuthError when missing,
    ValueError when `source` is malformed)."""
    kind, owner = _SOURCE.match(source).groups()
    owner = owner.strip("/")
    if kind == "azure" and owner.count("/") != 1:
        raise ValueError(f"{source}: expected azure:ORGANIZATION/PROJECT")
    host = HOSTS[kind]
    return host(owner, api_url, token_from_env(source, host.variable))
