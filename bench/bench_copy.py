"""`copier copy` of this template with default answers, as a user runs it (a subprocess, cold
interpreter). Target: <= 1.5 s wall on the 2-core reference machine.

    .venv/bin/python bench/bench_copy.py [--runs 7]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    copier = Path(sys.executable).parent / "copier"
    # A clean clone, so copier renders a commit (as users do) rather than a dirty work tree.
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(template)], check=True)
        times = []
        for run in range(args.runs):
            dest = Path(tmp) / f"p{run}"
            started = time.perf_counter()
            subprocess.run(
                [str(copier), "copy", "--trust", "--defaults", "--quiet", "--vcs-ref", "HEAD", str(template), str(dest)],
                check=True,
            )
            times.append(time.perf_counter() - started)
            shutil.rmtree(dest)
    print(f"copier copy (defaults): median {statistics.median(times):.2f} s over {len(times)} runs "
          f"(min {min(times):.2f}, max {max(times):.2f})")


if __name__ == "__main__":
    main()
