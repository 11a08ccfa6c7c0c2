"""The inner loop, as an engineer pays for it: each stage as a process on the local target, and the
generated repository's test suite (what its `make test` runs), on a freshly rendered default repo.

    .venv/bin/python bench/bench_inner_loop.py [--runs 3] [--suite] [--ci aws,azure,gcp]

Stages run in pipeline order (train, evaluate, gate, register, deploy, smoke, promote, rollback),
`--runs` times; the median of each is printed (deploy and rollback after the first run redeploy into a
running server; "deploy (new server)" deploys after an undeploy: a server forked from the warm factory). `--suite` also times the generated suite as its `make test` runs it (every cloud's
extra installed); `--ci` times `mlops-gen ci run --provider P` on the same repository, warm (one
untimed run first). `validate` has its own benchmarks (bench_validate*.py).
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

from mlops_gen.selfwheel import find_links_env  # noqa: E402
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
    parser.add_argument("--ci", default="", help="also time `ci run` for these providers (comma-separated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo")
        python = project_python(repo, ["local", "dev"], label="project")
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        package = next(p.name for p in (repo / "src").iterdir() if (p / "__main__.py").exists())
        times: dict[str, list[float]] = {name: [] for name, _ in STAGES} | {"deploy (new server)": []}
        for run in range(args.runs):
            for name, extra in STAGES:
                if name == "rollback" and run == 0:
                    # rollback needs a previous version in staging: the first run has only one
                    timed([str(python), "-m", package, "register", "--target", "local"], repo, env)
                    timed([str(python), "-m", package, "deploy", "--target", "local"], repo, env)
                times[name].append(timed([str(python), "-m", package, name, "--target", "local", *extra], repo, env))
            # a deploy that needs a new server (here: after undeploy), forked from the warm factory
            timed([str(python), "-m", package, "undeploy", "--target", "local"], repo, env)
            times["deploy (new server)"].append(timed([str(python), "-m", package, "deploy", "--target", "local"],
                                                      repo, env))
        subprocess.run([str(python), "-m", package, "undeploy", "--target", "local"], cwd=repo, env=env,
                       check=False, capture_output=True)
        print(f"{'stage':20} median s  (runs: {args.runs}, load: {os.getloadavg()[0]:.2f})")
        for name, values in times.items():
            print(f"{name:20} {statistics.median(values):8.2f}")
        if args.suite:
            everything = project_python(repo, ["local", "dev", "aws", "azure", "gcp"], label="project-all")
            suite = [timed([str(everything), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"], repo, env)
                     for _ in range(args.runs)]
            print(f"{'suite':10} {statistics.median(suite):8.2f}  (generated tests, every cloud's extra)")
        for provider in filter(None, args.ci.split(",")):
            ci_env = find_links_env(dict(os.environ))  # the CI files install mlops-gen: this checkout's wheel
            if not (repo / ".git").exists():
                for git in (["init", "-q", "-b", "main"], ["add", "-A"],
                            ["-c", "user.email=b@example.com", "-c", "user.name=b", "commit", "-q", "-m", "bench"]):
                    subprocess.run(["git", *git], cwd=repo, check=True)
            command = [sys.executable, "-m", "mlops_gen", "ci", "run", "--provider", provider, "--repo", str(repo)]
            timed(command, repo, ci_env)  # warm: the provider's environment and the validator's tool environment
            runs = [timed(command, repo, ci_env) for _ in range(args.runs)]
            print(f"{'ci ' + provider:10} {statistics.median(runs):8.2f}  (ci run, warm)")


if __name__ == "__main__":
    main()
