"""`mlops-gen validate --strict .` on one freshly generated repository (default answers: 15 CI and
infra files, a CloudFormation template among them), and `validate --strict FILE` on each of its three
CI files (what pre-commit runs on a commit that changes one), as a user runs them: the installed
command as a process, cold interpreter. Targets (#18), median on the 2-core reference machine:
<= 2 s for the repository, <= 0.2 s for one file.

    .venv/bin/python bench/bench_validate_repo.py [--runs 7]

Two conditions, each after one untimed warm-up run:
- "bytecode cached": Python writes and reuses .pyc files, as it does by default (they go to a
  throw-away PYTHONPYCACHEPREFIX, so the virtualenv is left as it is);
- "no bytecode cache": PYTHONDONTWRITEBYTECODE=1 and no .pyc in the virtualenv, so every module is
  compiled from source on every run (what this machine's sessions do; worst case).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time and CPU time (user + system, the process and its forked worker)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--pythonpath", type=Path, default=None,
                        help="import mlops_gen from this folder instead (e.g. `git archive` of an older commit's "
                             "generator/), to measure before/after with the same command")
    args = parser.parse_args()
    cli = str(BIN / "mlops-gen")
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        subprocess.run([cli, "new", str(repo), "--defaults"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        commands = {target: [cli, "validate", "--strict", target]
                    for target in (".", "buildspec.yml", "azure-pipelines.yml", "cloudbuild.yaml")}
        cached = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        cached["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        uncached = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        uncached.pop("PYTHONPYCACHEPREFIX", None)
        if args.pythonpath:
            for env in (cached, uncached):
                env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(args.pythonpath), env.get("PYTHONPATH")]))
        results = {}
        for label, env in (("bytecode cached", cached), ("no bytecode cache", uncached)):
            for target, cmd in commands.items():
                timed(cmd, repo, env)  # warm-up: .pyc files, the OS page cache, ~/.cache/mlops-gen
                results[f"{label}, validate --strict {target}"] = [timed(cmd, repo, env) for _ in range(args.runs)]
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}, {os.cpu_count()} cpus, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"commands: mlops-gen validate --strict . and each CI file (a default `mlops-gen new` repository), "
          f"{args.runs} runs each"
          + (f", mlops_gen from {args.pythonpath}" if args.pythonpath else ""))
    for label, runs in results.items():
        times = [wall for wall, _ in runs]
        cpu = statistics.median(c for _, c in runs)
        print(f"{label}: median {statistics.median(times):.2f} s wall, {cpu:.2f} s CPU "
              f"(wall min {min(times):.2f}, max {max(times):.2f}; runs: {', '.join(f'{t:.2f}' for t in times)})")


if __name__ == "__main__":
    main()
