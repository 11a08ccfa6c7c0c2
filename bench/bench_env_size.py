"""What a generated repository's CI installs into its ML environment, per cloud, before and after the
validator moved to an environment of its own; and the tool's own install size.

    .venv/bin/python bench/bench_env_size.py [--before REF]

Before: the template at REF (default 8cabbf5, the last commit with the `ci` extra), whose CI files
installed `.[<cloud>,dev,ci,local]` (the `ci` extra pointing at this checkout). After: the working tree,
whose CI files install `.[<cloud>,dev,local]`. Each set is installed with uv into a fresh virtual
environment (uv's cache makes this a copy, not a download); packages are counted with `uv pip list`
and the size is that of the environment's folder.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "generator"))

from mlops_gen import copier_seam, venvs  # noqa: E402
from mlops_gen.selfwheel import wheel_dir  # noqa: E402


def size_mb(path: Path) -> float:
    return int(subprocess.run(["du", "-sk", str(path)], capture_output=True, text=True, check=True)
               .stdout.split()[0]) / 1024


def measure(requirements: list[str], where: Path) -> tuple[int, float]:
    uv = venvs._uv()
    subprocess.run([uv, "venv", "-q", str(where)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "--python", str(where / "bin" / "python"), *requirements], check=True)
    listed = json.loads(subprocess.run([uv, "pip", "list", "--format", "json", "--python", str(where / "bin" / "python")],
                                       capture_output=True, text=True, check=True).stdout)
    return len(listed), size_mb(where)


def render_at(ref: str | None, dest: Path, cloud: str) -> Path:
    data = {"clouds": [cloud]}
    if ref is None:
        copier_seam.copy(REPO, dest, data=data, defaults=True, vcs_ref="HEAD")
        return dest
    # the old template pinned its `ci` extra through this answer
    data["mlops_gen_requirement"] = f"mlops-gen @ {REPO.as_uri()}"
    copier_seam.copy(REPO, dest, data=data, defaults=True, vcs_ref=ref)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--before", default="8cabbf5")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for cloud in ("aws", "azure", "gcp"):
            for label, ref, extras in (("before", args.before, [cloud, "dev", "ci", "local"]),
                                       ("after", None, [cloud, "dev", "local"])):
                repo = render_at(ref, root / f"{label}-{cloud}", cloud)
                reqs = venvs.project_requirements(repo / "pyproject.toml", extras)
                count, mb = measure(reqs, root / f"env-{label}-{cloud}")
                rows.append((cloud, label, count, mb))
                print(f"{cloud:6} {label:7} {count:4d} packages {mb:8.1f} MB", flush=True)
        wheel = next(wheel_dir(REPO).glob("mlops_gen-*.whl"))
        count, mb = measure([str(wheel)], root / "env-tool")
        print(f"tool   mlops-gen {count:4d} packages {mb:8.1f} MB (wheel {wheel.stat().st_size / 1024:.0f} KB)")


if __name__ == "__main__":
    main()
