"""Operate at scale: `monitor` over 1,000,000 captured rows x 30 features (target: <= 30 s and
<= 1 GiB peak), and the capture's cost on the model server's latency (target: p99 with capture on
within 10 % of capture off, measured in the same run, modes alternated A B A B).

    .venv/bin/python bench/bench_monitor.py [--rows 1000000] [--seconds 8] [--runs 3]

Renders the default repository (its dataset has 30 features), trains, registers and deploys it
locally, writes the capture files as the server writes them (one JSON line per row, 8 MB files),
then times `python -m <pkg> monitor` as a process, with its peak resident memory (wait4's maxrss).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(HERE))

from bench_serving import CLIENT, free_port, wait_ready  # noqa: E402

from tests.helpers import project_python, render  # noqa: E402

WRITE_CAPTURE = r'''
import json, sys, time
from pathlib import Path
import numpy as np
folder, rows, names = Path(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
folder.mkdir(parents=True, exist_ok=True)
rng = np.random.default_rng(0)
stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
per_file, written, n = 8 << 20, 0, 0
out = None
for start in range(0, rows, 10_000):
    block = rng.normal(size=(min(10_000, rows - start), len(names))) * 10 + 15
    for i, values in enumerate(block.tolist()):
        if out is None or written > per_file:
            out = open(folder / f"capture-{time.time_ns()}-{n}.jsonl", "w"); written = 0; n += 1
        line = json.dumps({"request_id": f"r{start + i}", "row": 0, "time": stamp, "model_version": "1",
                           "features": dict(zip(names, values)), "prediction": int(values[0] > 15)}) + "\n"
        out.write(line); written += len(line)
'''


def run_measured(argv: list[str], cwd: Path, env: dict) -> tuple[float, float, int]:
    """Seconds, peak RSS in MiB, and exit code of one process."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    proc.stderr.close()
    return seconds, usage.ru_maxrss / 1024, proc.returncode


def latency(python: Path, repo: Path, package: str, capture: Path | None, seconds: float) -> dict:
    port = free_port()
    argv = [str(python), "-m", package, "serve", "--port", str(port), "--max-in-flight", "1000"]
    if capture is not None:
        argv += ["--capture-dir", str(capture), "--capture-percent", "100"]
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    server = subprocess.Popen(argv, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port)
        out = subprocess.run([str(python), "-c", CLIENT, str(port), "20", "10", str(seconds),
                              str(repo / "artifacts" / "sample.json")], capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo", clouds=["gcp"])
        python = project_python(repo, ["local", "dev"], label="project")
        package = next(p.name for p in (repo / "src").iterdir() if (p / "__main__.py").exists())
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        stage = [str(python), "-m", package]
        for name in ("train", "evaluate", "gate", "register"):
            subprocess.run([*stage, name], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)

        print(f"capture overhead: 20 clients x 10 rows, {args.seconds:g} s per mode, A B A B "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
        p99 = {"off": [], "on": []}
        for _ in range(2):
            for mode in ("off", "on"):
                capture = Path(tmp) / "latency-capture" if mode == "on" else None
                result = latency(python, repo, package, capture, args.seconds)
                p99[mode].append(result["p99_ms"])
                print(f"  capture {mode:3}: {result['rps']:7.1f} req/s  p50 {result['p50_ms']:6.1f} ms  "
                      f"p99 {result['p99_ms']:6.1f} ms  errors {result['errors']}", flush=True)
        off, on = statistics.median(p99["off"]), statistics.median(p99["on"])
        print(f"p99 median: off {off:.1f} ms, on {on:.1f} ms: {100 * (on / off - 1):+.1f} %", flush=True)

        subprocess.run([*stage, "deploy"], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
        try:
            names = [c["name"] for c in json.loads((repo / "artifacts" / "model" / "model.json").read_text())["schema"]]
            capture = repo / ".mlops" / "capture" / "staging"
            started = time.perf_counter()
            subprocess.run([str(python), "-c", WRITE_CAPTURE, str(capture), str(args.rows), json.dumps(names)],
                           check=True)
            size = sum(f.stat().st_size for f in capture.glob("*.jsonl")) / 2**20
            print(f"wrote {args.rows:,} captured rows x {len(names)} features ({size:.0f} MiB) in "
                  f"{time.perf_counter() - started:.0f} s", flush=True)
            config = (repo / "mlops.yaml").read_text().replace("    hours: 24", f"    rows: {args.rows}")
            (repo / "mlops.yaml").write_text(config)
            timings, peaks = [], []
            for _ in range(args.runs):
                seconds, peak, code = run_measured([*stage, "monitor"], repo, env)
                timings.append(seconds)
                peaks.append(peak)
                print(f"  monitor: {seconds:.1f} s, peak {peak:.0f} MiB, exit {code}", flush=True)
            print(f"monitor over {args.rows:,} rows: median {statistics.median(timings):.1f} s, "
                  f"peak {max(peaks):.0f} MiB (load {os.getloadavg()[0]:.2f})")
        finally:
            subprocess.run([*stage, "undeploy"], cwd=repo, env=env, check=False, capture_output=True)


if __name__ == "__main__":
    main()
