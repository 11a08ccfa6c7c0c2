"""The inner loop, as an engineer pays for it: each stage as a process on the local target, and the
generated repository's test suite (what its `make test` runs), on a freshly rendered default repo.

    .venv/bin/python bench/bench_inner_loop.py [--runs 3] [--suite]

Stages run in pipeline order (train, evaluate, gate, register, deploy, smoke, promote, rollback),
`--runs` times; the median of each is printed. `--suite` also times the generated suite (slow).
`validate` and `ci run` have their own benchmarks (bench_validate*.py; ci run: the demo timings).
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

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.helpers import project_python, render  # noqa: E402

STAGES = [("train", []), ("evaluate", []), ("gate", []), ("register", []), ("deploy", []), ("smoke", []),
          ("promote", ["--to", "prod"]), ("rollback", ["--env", "staging"])]


def timed(argv: list[str], cwd: Path, env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(argv, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--suite", action="store_true", help="also time the generated test suite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo")
        python = project_python(repo, ["local", "dev"], label="project")
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        package = next(p.name for p in (repo / "src").iterdir() if (p / "__main__.py").exists())
        times: dict[str, list[float]] = {name: [] for name, _ in STAGES}
        for run in range(args.runs):
            for name, extra in STAGES:
                if name == "rollback" and run == 0:
                    # rollback needs a previous version in staging: the first run has only one
                    timed([str(python), "-m", package, "register", "--target", "local"], repo, env)
                    timed([str(python), "-m", package, "deploy", "--target", "local"], repo, env)
                times[name].append(timed([str(python), "-m", package, name, "--target", "local", *extra], repo, env))
        subprocess.run([str(python), "-m", package, "undeploy", "--target", "local"], cwd=repo, env=env,
                       check=False, capture_output=True)
        print(f"{'stage':10} median s  (runs: {args.runs}, load: {os.getloadavg()[0]:.2f})")
        for name, values in times.items():
            print(f"{name:10} {statistics.median(values):8.2f}")
        if args.suite:
            suite = [timed([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], repo, env)
                     for _ in range(args.runs)]
            print(f"{'suite':10} {statistics.median(suite):8.2f}  (generated tests, local extras)")


if __name__ == "__main__":
    main()
