"""Benchmark: `mlops-gen validate` over the CI files of 100 repos in one call, against running
`check-jsonschema` and `yamllint` once per file (one subprocess each), side by side.

    .venv/bin/python bench/bench_validate.py [--repos 100] [--runs 5] [--baseline-repos 10]

The repos are rendered from the template when a render contains CI files (one render per clouds
combination, copied to fill --repos folders with distinct project names); otherwise they are built
from the real-world corpus in tests/corpus/real-ci (each repo gets one buildspec, one Azure
pipeline and one Cloud Build config, taken round-robin). The baseline runs on --baseline-repos
repos and is scaled per file to --repos (each file costs the same two subprocesses); pass
--baseline-repos equal to --repos to measure it in full.
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CORPUS = REPO / "tests" / "corpus" / "real-ci"
SCHEMA = REPO / "generator" / "mlops_gen" / "validate" / "data" / "buildspec-0.2.schema.json"
YAMLLINT_CONFIG = REPO / "generator" / "mlops_gen" / "validate" / "data" / "yamllint.yaml"
CI_NAMES = {"buildspec.yml": "aws", "azure-pipelines.yml": "azure", "cloudbuild.yaml": "gcp"}


def rendered_sources(work: Path) -> list[Path] | None:
    sys.path.insert(0, str(REPO))
    try:
        from tests.helpers import render
    except Exception:
        return None
    out = []
    for i, clouds in enumerate((["aws", "azure", "gcp"], ["aws"], ["azure"], ["gcp"])):
        dest = render(work / f"render-{i}", clouds=clouds, project_name=f"Bench Project {i}")
        if any((dest / name).exists() for name in CI_NAMES):
            out.append(dest)
    return out or None


def build_repos(work: Path, count: int) -> tuple[Path, str]:
    root = work / "repos"
    root.mkdir()
    renders = rendered_sources(work)
    if renders:
        for i in range(count):
            shutil.copytree(renders[i % len(renders)], root / f"repo-{i:03d}")
        return root, f"{len(renders)} template renders copied to {count} repos"
    pools = {d: sorted((CORPUS / d).glob("*.y*ml")) for d in ("aws", "azure", "gcp")}
    for i in range(count):
        repo = root / f"repo-{i:03d}"
        repo.mkdir()
        for name, dialect in CI_NAMES.items():
            pool = pools[dialect]
            shutil.copy(pool[i % len(pool)], repo / name)
    return root, f"corpus files (template renders have no CI files yet), {count} repos x 3 files"


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def baseline_commands(path: Path) -> list[list[str]]:
    dialect = CI_NAMES.get(path.name)
    if dialect == "azure":
        schema = ["--builtin-schema", "vendor.azure-pipelines", "--regex-variant", "python",
                  "--data-transform", "azure-pipelines"]
    elif dialect == "gcp":
        schema = ["--builtin-schema", "vendor.cloudbuild"]
    else:
        schema = ["--schemafile", str(SCHEMA)]
    return [[str(BIN / "check-jsonschema"), *schema, str(path)],
            [str(BIN / "yamllint"), "-c", str(YAMLLINT_CONFIG), str(path)]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-repos", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root, source = build_repos(Path(tmp), args.repos)
        files = sorted(p for p in root.rglob("*") if p.name in CI_NAMES)
        # the same files as the baseline, named explicitly (the repos also hold infra/ and prod files)
        ours_cmd = [str(BIN / "mlops-gen"), "validate", *map(str, files)]
        ours = [timed(ours_cmd) for _ in range(args.runs)]
        sample = [p for p in files if int(p.parent.name.split("-")[1]) < args.baseline_repos]
        base_runs = []
        for _ in range(max(1, min(args.runs, 3))):
            start = time.perf_counter()
            for path in sample:
                for cmd in baseline_commands(path):
                    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
            base_runs.append((time.perf_counter() - start) * len(files) / len(sample))
        ours_median = statistics.median(ours)
        base_median = statistics.median(base_runs)
        print(f"source: {source}")
        print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
              f"python {platform.python_version()}, {__import__('os').cpu_count()} cpus")
        print(f"files: {len(files)} CI files in {args.repos} repos")
        print(f"mlops-gen validate (one call, {args.runs} runs): median {ours_median:.2f} s "
              f"(runs: {', '.join(f'{t:.2f}' for t in ours)})")
        print(f"check-jsonschema + yamllint per file ({len(sample)} files measured, scaled to {len(files)}, "
              f"{len(base_runs)} runs): median {base_median:.2f} s")
        print(f"speed-up: {base_median / ours_median:.1f}x")


if __name__ == "__main__":
    main()
