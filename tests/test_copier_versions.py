"""copier behind one seam: the seam's contract and the fleet's update (copier's merge, conflict
markers) pass under the oldest and the newest copier that pyproject.toml admits."""

from __future__ import annotations

import os
import re
import subprocess
import tomllib

import pytest

from mlops_gen import CHECKOUT_ROOT, venvs

CONTRACT = ["tests/copier_contract", "tests/fleet/test_update.py"]


def declared_copier_range() -> tuple[str, str]:
    deps = tomllib.loads((CHECKOUT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(d for d in deps if re.match(r"copier\b", d))
    low, high = re.fullmatch(r"copier>=([\d.]+),<=([\d.]+)", spec.replace(" ", "")).groups()
    return low, high


def tool_requirements(copier_version: str) -> list[str]:
    deps = tomllib.loads((CHECKOUT_ROOT / "pyproject.toml").read_text())["project"]
    test = deps["optional-dependencies"]["test"]
    return [f"copier=={copier_version}", *(d for d in deps["dependencies"] if not d.startswith("copier")), *test]


def test_the_seam_is_the_only_importer_of_copier_internals() -> None:
    users = [str(p.relative_to(CHECKOUT_ROOT)) for p in (CHECKOUT_ROOT / "generator").rglob("*.py")
             if re.search(r"^\s*(from|import) copier\.?_", p.read_text(), re.MULTILINE)]
    assert users == ["generator/mlops_gen/copier_seam.py"]


@pytest.mark.xdist_group("copier-versions")
@pytest.mark.parametrize("end", ["oldest", "newest"])
def test_contract_under_declared_copier(end: str) -> None:
    version = dict(zip(("oldest", "newest"), declared_copier_range(), strict=True))[end]
    env_dir = venvs.ensure(tool_requirements(version), label=f"copier-{version}")
    python = env_dir / "bin" / "python"
    env = {**os.environ, "PYTHONPATH": f"{CHECKOUT_ROOT / 'generator'}{os.pathsep}{CHECKOUT_ROOT}"}
    probe = subprocess.run([str(python), "-c", "import copier, importlib.metadata as m; print(m.version('copier'))"],
                           capture_output=True, text=True, env=env, check=True)
    assert probe.stdout.strip() == version
    run = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *CONTRACT],
                         cwd=CHECKOUT_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, f"copier {version}:\n{run.stdout[-4000:]}{run.stderr[-2000:]}"
