"""The serving image's server under load, per framework (#21).

    .venv/bin/python bench/bench_image_serving.py [--seconds 10] [--frameworks sklearn,xgboost,lightgbm]

For each framework: renders a repository with it, trains its model, and starts the server exactly as the
image starts it (Dockerfile: `python -m <pkg> serve`, the model from MODEL_DIR, the address from
SERVE_HOST, the port from AIP_HTTP_PORT; no flags), then drives it from another process with bounded
keep-alive clients (bench_serving's client): one client and 20 clients, sending one row or 100 rows per
request. Reports requests/s, p50 and p99 latency and errors. No image is built: this machine has no
container engine, so the image size is not measured here.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serving import drive, free_port, wait_ready

SCENARIOS = [(1, 1), (1, 100), (20, 1), (20, 100)]


def run_framework(framework: str, tmp: Path, seconds: float) -> list[dict]:
    from tests.helpers import project_python, render

    # Azure: the one cloud whose prebuilt path serves every framework, so the answers are valid for all three.
    repo = render(tmp / framework, framework=framework, clouds=["azure"], package_name="bench_model")
    python = project_python(repo, ["local", "dev"], label="project" if framework == "sklearn" else f"project-{framework}")
    source = {**os.environ, "PYTHONPATH": str(repo / "src")}
    subprocess.run([str(python), "-m", "bench_model", "train"], cwd=repo, check=True, env=source,
                   stdout=subprocess.DEVNULL)
    port = free_port()
    image_env = {**source, "MODEL_DIR": str(repo / "artifacts" / "model"), "SERVE_HOST": "127.0.0.1",
                 "AIP_HTTP_PORT": str(port)}
    server = subprocess.Popen([str(python), "-m", "bench_model", "serve"], cwd=repo, env=image_env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port)
        results = []
        for clients, rows in SCENARIOS:
            result = {"framework": framework, **drive(python, repo, port, clients, rows, seconds)}
            results.append(result)
            print(f"{framework:<9} clients={clients:<3} rows={rows:<4} {result['rps']:8.1f} req/s  "
                  f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}",
                  flush=True)
        return results
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--frameworks", default="sklearn,xgboost,lightgbm")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for framework in args.frameworks.split(","):
            run_framework(framework, Path(tmp), args.seconds)


if __name__ == "__main__":
    main()
