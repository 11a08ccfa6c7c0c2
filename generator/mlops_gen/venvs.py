"""Virtual environments cached outside any clone, keyed by a hash of what they install.

Cloud SDKs (sagemaker, azure-ai-ml, google-cloud-aiplatform) take minutes to install; a
generated repo's tests, `mlops-gen ci run` and `make demo` all ask for "a Python with these
requirements" and get the same environment back while the requirements do not change.
The project being tested is never installed into a cached environment (it would point at
one clone); callers put its `src/` on PYTHONPATH instead.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

CACHE_ROOT = Path(os.environ.get("MLOPS_GEN_CACHE", Path.home() / ".cache" / "mlops-gen")) / "venvs"


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if not found:
        raise RuntimeError("uv is not installed: `pip install uv` (mlops-gen depends on it)")
    return found


def key_for(requirements: list[str], python: str = "3.11") -> str:
    text = "\n".join([f"python=={python}", *sorted(r.strip() for r in requirements if r.strip())])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def ensure(requirements: list[str], python: str | None = None, label: str = "env") -> Path:
    """Return the path of a venv holding `requirements`, creating it once per hash.

    Safe under concurrency (a file lock per key); a half-built venv is never reused because
    the `.complete` marker is written last.
    """
    python = python or f"{sys.version_info.major}.{sys.version_info.minor}"
    key = key_for(requirements, python)
    path = CACHE_ROOT / f"{label}-{key}"
    CACHE_ROOT.mkdir(parents=True, exist_ok=True)
    with open(CACHE_ROOT / f"{label}-{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (path / ".complete").exists():
            if not (path / ".compiled").exists():  # built before bytecode was compiled at install
                _compile(path)
            return path
        if path.exists():
            shutil.rmtree(path)
        uv = _uv()
        # This interpreter when it is the version asked for; else `python` is another interpreter's path or
        # a version uv finds on the machine.
        current = f"{sys.version_info.major}.{sys.version_info.minor}"
        interpreter = sys.executable if python == current else python
        subprocess.run([uv, "venv", "-q", "--python", interpreter, "--no-python-downloads", str(path)], check=True)
        if requirements:
            # Bytecode is compiled once here: with PYTHONDONTWRITEBYTECODE set (as on CI machines),
            # nothing would be cached at import, and every process would compile pandas, scikit-learn
            # and the cloud SDKs from source again (seconds per process).
            subprocess.run(
                [uv, "pip", "install", "-q", "--compile-bytecode", "--python", str(path / "bin" / "python"),
                 *requirements],
                check=True,
            )
        (path / "requirements.txt").write_text("\n".join(requirements) + "\n")
        (path / ".compiled").write_text(key)
        (path / ".complete").write_text(key)
    return path


def _compile(path: Path) -> None:
    """Compile an environment's bytecode once (environments cached before it was done at install)."""
    python = path / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([str(python), "-m", "compileall", "-q", "-j", "0", purelib], check=False,
                   capture_output=True)
    (path / ".compiled").write_text("compiled")


def project_requirements(pyproject: Path, extras: list[str]) -> list[str]:
    """The dependency list of a project (pyproject.toml) with the given extras, unresolved."""
    import tomllib

    data = tomllib.loads(pyproject.read_text())["project"]
    reqs = list(data.get("dependencies", []))
    optional = data.get("optional-dependencies", {})
    for extra in extras:
        reqs.extend(optional.get(extra, []))
    return reqs
