"""The Python a local CI run uses: a cached environment per provider plus a thin one per run.

Design. The slow part of a CI run is installing the project's dependencies; the CI file itself
also runs `pip install ".[${TARGET}]"` (and may install tools), which must neither
write into a cache shared by other runs nor race with them. So:

* the *base* environment (`mlops_gen.venvs.ensure`, hash-keyed, label `ci-<provider>`) holds
  the project's dependencies with the extras the CI file installs (`.[a,${VAR}]`, variables
  resolved with the run's values) and `dev`/`test`, its build backend, and pip. It is built once per change of those requirements and never written to
  by a run;
* each run gets a *thin* environment (`uv venv`, ~20 ms) whose site-packages holds a `.pth`
  line pointing at the base environment's site-packages, and copies of the base
  environment's console scripts re-pointed at the thin interpreter. Inside the run,
  `pip install ".[local]"` finds every dependency already satisfied and only builds the
  project (build isolation is off, so the build backend comes from the base environment and
  nothing is downloaded). Anything the CI file installs beyond that lands in the thin
  environment, which is deleted with the run; pip refuses to uninstall from the base
  ("outside environment"), so an upgrade shadows instead of mutating the cache.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from mlops_gen import venvs

TOOL_EXTRAS = ("dev", "test")


def base_requirements(workspace: Path, extras: list[str] = ()) -> list[str]:
    pyproject = workspace / "pyproject.toml"
    reqs = ["pip", "editables"]
    if not pyproject.exists():
        return reqs
    data = tomllib.loads(pyproject.read_text())
    optional = data.get("project", {}).get("optional-dependencies", {})
    extras = [e for e in dict.fromkeys((*TOOL_EXTRAS, *extras)) if e and e in optional]
    reqs += venvs.project_requirements(pyproject, extras)
    reqs += data.get("build-system", {}).get("requires", [])
    # the project itself is never put into the shared environment (it would point at one clone)
    name = data.get("project", {}).get("name", "")
    return [r for r in dict.fromkeys(reqs) if not _names(r, name)]


def _names(requirement: str, name: str) -> bool:
    def norm(s: str) -> str:
        return s.lower().replace("_", "-").replace(".", "-")
    head = requirement.split("[", 1)[0].split(";", 1)[0]
    for sep in "<>=!~ @":
        head = head.split(sep, 1)[0]
    return bool(name) and norm(head.strip()) == norm(name)


def _purelib(python: Path) -> str:
    return subprocess.run([str(python), "-c", "import sysconfig;print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()


def thin_venv(base: Path, dest: Path) -> Path:
    """A per-run environment layered over `base`; returns its path."""
    subprocess.run([venvs._uv(), "venv", "-q", "--python", str(base / "bin" / "python"), str(dest)],
                   check=True, capture_output=True)
    # both interpreters are the same version, so the layout is the same
    rel = Path(sysconfig.get_path("purelib", vars={"base": "", "platbase": ""}).lstrip("/"))
    site = dest / rel if (dest / rel).is_dir() else Path(_purelib(dest / "bin" / "python"))
    base_site = base / rel if (base / rel).is_dir() else Path(_purelib(base / "bin" / "python"))
    (site / "_mlops_gen_ci_base.pth").write_text(f"{base_site}\n")
    # pip reads sys.prefix/pip.conf: build isolation off ("0" is pip's spelling of off for a
    # --no-* flag) so the build backend comes from the base environment, offline. A venv the CI
    # file creates itself elsewhere is not affected.
    (dest / "pip.conf").write_text("[global]\nno-build-isolation = 0\ndisable-pip-version-check = 1\n")
    thin_python = str(dest / "bin" / "python")
    for script in (base / "bin").iterdir():
        target = dest / "bin" / script.name
        if target.exists() or target.is_symlink() or script.is_dir() or script.is_symlink():
            continue
        try:
            text = script.read_text()
        except (UnicodeDecodeError, OSError):  # a native executable (ruff, uv): used as it is
            target.symlink_to(script)
            continue
        first, _, rest = text.partition("\n")
        if first.startswith("#!") and "python" in first:
            target.write_text(f"#!{thin_python}\n{rest}")
            target.chmod(0o755)
    return dest


_VENV_CMD = re.compile(r"(?:python[\d.]*|\S*/python[\d.]*)\s+-m\s+venv\s+(?:-{1,2}[\w-]+\s+)*([\w./${}()-]+)")
_EXTRAS = re.compile(r"\.\[([^\]\s]+)\]")
# A variable reference in any of the three dialects: $NAME ${NAME} ${NAME:?} $(NAME) ${{ variables.NAME }}
_VAR_REF = re.compile(r"\$\{\{\s*variables\.([\w.]+)\s*\}\}|\$\{(\w+)(?::?[-?=+][^}]*)?\}|\$\((\w[\w.]*)\)|\$(\w+)")


def ci_extras(ci_text: str, variables: dict[str, str]) -> list[str]:
    """Extras the CI file installs (`.[a,b,${NAME}]`), references resolved with the run's variables;
    a reference to a variable the run does not set is left out (the run installs that extra itself)."""
    def value(match: re.Match) -> str:
        return variables.get(next(g for g in match.groups() if g), "")

    found: list[str] = []
    for group in _EXTRAS.findall(ci_text):
        for extra in _VAR_REF.sub(value, group).split(","):
            if extra.strip() and extra.strip() not in found:
                found.append(extra.strip())
    return found


def ci_venvs(ci_text: str) -> list[str]:
    """Relative paths of the virtual environments the CI file creates (`python -m venv .venv`)."""
    return [p for p in dict.fromkeys(_VENV_CMD.findall(ci_text)) if not p.startswith(("/", "$"))]


def prepare(workspace: Path, provider: str, variables: dict[str, str], run_dir: Path, log,
            ci_text: str = "") -> Path:
    """Base (cached) + thin (per run) environment for `workspace`; returns the thin one.

    The base holds the extras the CI file installs. A virtual environment the CI file creates
    in the workspace (Cloud Build keeps only /workspace between steps, so its files do) is
    pre-seeded as another thin layer: `python -m venv .venv` then finds it and keeps the layer.
    """
    reqs = base_requirements(workspace, ci_extras(ci_text, variables))
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    key = venvs.key_for(reqs, python)
    cached = (venvs.CACHE_ROOT / f"ci-{provider}-{key}" / ".complete").exists()
    log(f"python environment: {'cached' if cached else 'building'} base ci-{provider}-{key} "
        f"({len(reqs)} requirements)")
    base = venvs.ensure(reqs, label=f"ci-{provider}")
    for rel in ci_venvs(ci_text):
        if not (workspace / rel).exists():
            thin_venv(base, workspace / rel)
            log(f"{rel}: pre-seeded as a layer over the cached environment")
    return thin_venv(base, run_dir / "venv")


def python_env(venv: Path, env: dict[str, str]) -> dict[str, str]:
    """`env` with the run's environment first on PATH, as an activated venv would have it."""
    env = dict(env)
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', os.defpath)}"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env.pop("PYTHONHOME", None)
    return env
