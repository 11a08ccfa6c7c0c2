"""A wheel of the running mlops-gen, for generated repositories that install it before it is released.

Generated repositories run their validator as `uvx --from mlops-gen==X.Y.Z`: from a package index
once X.Y.Z is published. A checkout (tests, `make demo`) offers its own wheel instead, through
`UV_FIND_LINKS`/`PIP_FIND_LINKS` (the standard way to add a folder of wheels to both installers).
Built once per content of the sources, under the cache folder shared with the virtual environments.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
from pathlib import Path

from mlops_gen import CHECKOUT_ROOT, venvs

SOURCES = ("pyproject.toml", "copier.yml", "README.md", "generator", "template")


def _fingerprint(root: Path) -> str:
    digest = hashlib.sha256()
    for name in SOURCES:
        top = root / name
        paths = [top] if top.is_file() else sorted(p for p in top.rglob("*") if p.is_file()
                                                    and "__pycache__" not in p.parts)
        for path in paths:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def wheel_dir(root: Path | None = CHECKOUT_ROOT) -> Path | None:
    """A folder holding a wheel of the checkout at `root` (None when not running from a checkout)."""
    if root is None:
        return None
    out = venvs.CACHE_ROOT.parent / "wheels" / _fingerprint(root)
    out.mkdir(parents=True, exist_ok=True)
    with open(out.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not any(out.glob("mlops_gen-*.whl")):
            subprocess.run([venvs._uv(), "build", "-q", "--wheel", "--out-dir", str(out), str(root)],
                           check=True, capture_output=True)
    return out


def find_links_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: os.environ) with this checkout's wheel folder added to uv's and pip's find-links."""
    env = dict(os.environ if env is None else env)
    folder = wheel_dir()
    if folder is not None:
        for name, sep in (("UV_FIND_LINKS", ","), ("PIP_FIND_LINKS", " ")):
            env[name] = sep.join(filter(None, [env.get(name, ""), str(folder)]))
    return env
