"""The generated repo's local `pipeline` (train -> evaluate -> gate -> register -> deploy -> smoke)
with its dependencies installed, as `make pipeline` runs it. Target: <= 20 s on the 2-core machine.

    .venv/bin/python bench/bench_pipeline.py [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mlops_gen import venvs
from mlops_gen.render import render


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo")
        env_dir = venvs.ensure(venvs.project_requirements(repo / "pyproject.toml", ["local", "dev"]), label="project")
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        package = next(p.name for p in (repo / "src").iterdir() if p.is_dir())
        times = []
        for _ in range(args.runs):
            subprocess.run(["rm", "-rf", "artifacts", ".mlops"], cwd=repo, check=True)
            started = time.perf_counter()
            subprocess.run([str(env_dir / "bin" / "python"), "-m", package, "pipeline"], cwd=repo, env=env,
                           check=True, stdout=subprocess.DEVNULL)
            times.append(time.perf_counter() - started)
        subprocess.run(["rm", "-rf", ".mlops"], cwd=repo, check=True)  # stops the servers
    print(f"local pipeline: median {statistics.median(times):.2f} s over {len(times)} runs "
          f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
