"""Run every benchmark in turn (`make bench`); record the results in BENCHMARKS.md by hand, with
the machine and its load, since numbers from a busy machine are not comparable."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

for script in ("bench_copy.py", "bench_pipeline.py", "bench_validate.py", "bench_validate_repo.py", "bench_fleet.py",
               "bench_env_size.py", "bench_serving.py", "bench_inner_loop.py", "bench_image_serving.py"):
    print(f"== {script}", flush=True)
    subprocess.run([sys.executable, str(HERE / script)], check=True)
