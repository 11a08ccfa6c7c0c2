"""Benchmark: `mlops-gen fleet update github:ORG --push --open-pr --jobs 4` over N repositories
behind the local GitHub API server (tests/fleet/hostapi: every request checked against GitHub's
OpenAPI document), against a sequential loop of `git clone` + `copier update` + `git push` over
the same repositories, in the same run. Cold cache: every fleet run clones.

    .venv/bin/python bench/bench_fleet_hosts.py [--repos 200] [--runs 3] [--jobs 4] [--out FILE]

The template is this repository's (bench_fleet.make_template: v1.0.0 -> v2.0.0, a realistic
change); repositories are copies of a few generated ones with team edits (bench_fleet.make_fleet),
published as bare repositories (file:// clone URLs). Reported: wall time of each side (median of
--runs for the fleet, one run of the loop), the ratio, and API requests per repository.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from bench_fleet import make_fleet, make_template  # noqa: E402

from tests.fleet.hostapi.fleet import publish  # noqa: E402
from tests.fleet.hostapi.server import ApiServer, World  # noqa: E402

BIN = Path(sys.executable).parent
SEEDS = 4           # distinct generated repositories; the fleet holds copies of them
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "b@example.com"}


def hosted_fleet(root: Path, seeds: dict[str, Path], count: int) -> tuple[World, ApiServer]:
    world = World()
    copies = -(-count // len(seeds))
    published = publish(world, "github", "acme", seeds, root / "remote", copies=copies)
    for name in sorted(published)[count:]:              # exactly `count` repositories
        world.repos[("github", "acme")].remove(published[name])
    return world, ApiServer(world).__enter__()


def run_fleet(root: Path, seeds: dict[str, Path], count: int, jobs: int) -> dict:
    world, server = hosted_fleet(root, seeds, count)
    try:
        report = root / "report.json"
        start = time.perf_counter()
        proc = subprocess.run([str(BIN / "mlops-gen"), "fleet", "update", "github:acme", "--api-url",
                               server.api_url("github"), "--cache-dir", str(root / "cache"), "--to", "v2.0.0",
                               "--open-pr", "--jobs", str(jobs), "--report", str(report)],
                              capture_output=True, text=True, check=False,
                              env={**GIT_ENV, "GITHUB_TOKEN": world.tokens["github"]})
        seconds = time.perf_counter() - start
    finally:
        server.__exit__()
    data = json.loads(report.read_text())
    states = [r["request_state"] for r in data["repos"]]
    assert proc.returncode == 0 and states.count("opened") == count, (proc.returncode, proc.stdout[-2000:])
    assert not world.violations, world.violations[:3]
    return {"seconds": seconds, "requests": len(world.log), "requests_per_repo": len(world.log) / count}


def run_loop(root: Path, seeds: dict[str, Path], count: int) -> float:
    """What a platform engineer would script: per repository, clone, copier update, push."""
    world, server = hosted_fleet(root, seeds, count)
    server.__exit__()                                     # the loop uses git only
    start = time.perf_counter()
    for repo in world.repos[("github", "acme")]:
        work = root / "loop" / repo.name
        subprocess.run(["git", "clone", "-q", repo.url, str(work)], check=True, env=GIT_ENV)
        subprocess.run(["git", "checkout", "-q", "-b", "template-update/v2.0.0"], cwd=work, check=True, env=GIT_ENV)
        subprocess.run([str(BIN / "copier"), "update", "--defaults", "--trust", "--conflict", "inline",
                        "--vcs-ref", "v2.0.0", "--quiet", str(work)], check=True, env=GIT_ENV,
                       capture_output=True)
        for args in (["add", "-A"],
                     ["commit", "-q", "-m", "Update template to v2.0.0"],
                     ["push", "-q", "origin", "template-update/v2.0.0"]):
            subprocess.run(["git", *args], cwd=work, check=True, env=GIT_ENV)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repos", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--loop-repos", type=int, help="run the loop over the first N repositories only and "
                        "scale its time to --repos (it is sequential: ~12 s a repository). Default: all")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-fleet-hosts-") as tmp:
        root = Path(tmp)
        tpl = make_template(root)
        fleet = make_fleet(root, tpl, SEEDS)
        seeds = {p.name: p for p in sorted(fleet.iterdir())}
        fleet_runs = []
        for number in range(args.runs):
            fleet_runs.append(run_fleet(root / f"fleet-{number}", seeds, args.repos, args.jobs))
            print(f"fleet run {number + 1}: {fleet_runs[-1]['seconds']:.1f} s", flush=True)
        looped = args.loop_repos or args.repos
        loop = run_loop(root / "loop-run", seeds, looped) * args.repos / looped
        print(f"loop: {loop:.1f} s" + (f" (scaled from {looped} repositories)" if looped != args.repos else ""),
              flush=True)
        shutil.rmtree(root, ignore_errors=True)
    median = statistics.median(r["seconds"] for r in fleet_runs)
    result = {"repos": args.repos, "jobs": args.jobs, "loop_repos": args.loop_repos or args.repos, "fleet_seconds": [round(r["seconds"], 2) for r in fleet_runs],
              "fleet_median": round(median, 2), "loop_seconds": round(loop, 2), "ratio": round(loop / median, 1),
              "requests_per_repo": round(statistics.median(r["requests_per_repo"] for r in fleet_runs), 2),
              "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
              "load": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
