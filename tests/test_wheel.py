"""The wheel is the product: installed in a fresh environment outside any checkout, `mlops-gen new`
renders exactly what a checkout renders, and the repository references nothing of this machine."""

from __future__ import annotations

import filecmp
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from mlops_gen import CHECKOUT_ROOT, __version__, venvs
from mlops_gen.selfwheel import wheel_dir

pytestmark = pytest.mark.xdist_group("wheel")

# Packages only the validator needs: none may land in a generated repository's ML environment.
VALIDATOR_ONLY = {"mlops-gen", "copier", "cfn-lint", "sympy", "check-jsonschema", "yamllint", "google-cloud-build"}


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv holding only the wheel built from this checkout (and its dependencies)."""
    wheel = next(wheel_dir(CHECKOUT_ROOT).glob("mlops_gen-*.whl"))
    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([venvs._uv(), "venv", "-q", str(venv)], check=True)
    # --compile-bytecode: what pip does by default, so the template's .py files get __pycache__ folders
    # next to them, as on a user's machine (copier must not copy them into a repository)
    subprocess.run([venvs._uv(), "pip", "install", "-q", "--compile-bytecode", "--python", str(venv / "bin" / "python"),
                    str(wheel)], check=True)
    return venv / "bin"


def tool(bin_dir: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(bin_dir / "mlops-gen"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def files(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in root.rglob("*") if p.is_file()}


def answers_without_source(path: Path) -> dict:
    return {k: v for k, v in yaml.safe_load(path.read_text()).items() if k not in ("_src_path", "_commit")}


def test_version_is_the_wheels_and_the_templates(installed: Path, tmp_path: Path) -> None:
    assert tool(installed, "--version", cwd=tmp_path).stdout.strip() == f"mlops-gen, version {__version__}"
    template = yaml.safe_load((CHECKOUT_ROOT / "copier.yml").read_text())
    assert template["mlops_gen_version"]["default"] == __version__


@pytest.mark.parametrize("clouds", ["aws,azure,gcp", "aws", "azure", "gcp"])
def test_installed_wheel_renders_what_the_checkout_renders(installed: Path, tmp_path: Path, rendered,
                                                          clouds: str) -> None:
    done = tool(installed, "new", "out", "--defaults", "--data", f"clouds={clouds}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    from_wheel = tmp_path / "out"
    from_checkout = rendered(clouds=clouds.split(","))

    wheel_files, checkout_files = files(from_wheel), files(from_checkout)
    assert sorted(wheel_files) == sorted(checkout_files)
    differ = [f for f in wheel_files if f != ".copier-answers.yml"
              and not filecmp.cmp(wheel_files[f], checkout_files[f], shallow=False)]
    assert differ == []
    answers = ".copier-answers.yml"
    assert answers_without_source(wheel_files[answers]) == answers_without_source(checkout_files[answers])

    assert sum(p.stat().st_size for p in wheel_files.values()) < 2_000_000
    assert not (from_wheel / "site-packages").exists()
    # Nothing of this machine: no file:// URL and no absolute path, but copier's own `_src_path`.
    # (the home folder is not among the paths: CodeBuild's is /root too, and buildspec.yml names its cache)
    machine = re.compile(r"file://|site-packages|" + "|".join(re.escape(str(p)) for p in (tmp_path, installed.parent,
                                                                                          CHECKOUT_ROOT)))
    leaks = [f"{name}: {line.strip()}" for name, path in wheel_files.items()
             for line in path.read_text(errors="replace").splitlines()
             if machine.search(line) and not (name == answers and line.startswith("_src_path:"))]
    assert leaks == []

    checked = tool(installed, "validate", "--strict", "out", cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_folder_without_copier_yml_is_refused(installed: Path, tmp_path: Path) -> None:
    (tmp_path / "not-a-template").mkdir()
    (tmp_path / "not-a-template" / "README.md").write_text("hello\n")
    done = tool(installed, "new", "out", "--defaults", "--template", "not-a-template", cwd=tmp_path)
    assert done.returncode == 2
    assert "no copier.yml" in done.stderr and "not-a-template" in done.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cloud", ["aws", "azure", "gcp"])
def test_ml_environment_holds_no_validator_package(rendered, cloud: str) -> None:
    """What `pip install .[<cloud>,dev]` would install, resolved by uv: none of the validator's packages."""
    repo = rendered(clouds=[cloud])
    extras = ["local", "dev", cloud, "k8s"]
    optional = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(optional) == set(extras), "one extra per target (k8s is always one) plus dev: no `ci` extra"
    resolved = subprocess.run(
        [venvs._uv(), "pip", "compile", "-q", "--no-header", "--no-annotate", "--python-version", "3.11",
         *(f"--extra={e}" for e in extras), str(repo / "pyproject.toml")],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout
    names = {re.split(r"[=<>\[ ;]", line, maxsplit=1)[0].lower().replace("_", "-")
             for line in resolved.splitlines() if line and not line.startswith(("#", " "))}
    assert "scikit-learn" in names and "pytest" in names
    assert names & VALIDATOR_ONLY == set()
