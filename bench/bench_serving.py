"""The generated model server under load: batching on versus off (`--max-batch-size 1`), same run.

    .venv/bin/python bench/bench_serving.py [--seconds 10]

Renders the default repository, trains its model, and for each mode starts `python -m <pkg> serve`
on 127.0.0.1 and drives it with a load client in another process (asyncio, HTTP/1.1 keep-alive, one
connection per client, each sending its next request when the previous one is answered), bounded in
time: 1 and 200 concurrent clients sending one row each, and 20 clients sending 100 rows each.
Reports requests/s, p50 and p99 latency, errors (any non-200) and the server's peak memory (VmHWM)
over its idle memory.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "generator"))
sys.path.insert(0, str(REPO))

CLIENT = r'''
import asyncio, json, re, sys, time

async def one(port, body, deadline, latencies, errors):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = (f"POST /invocations HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        writer.write(head + body)
        await writer.drain()
        answer = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", answer).group(1))
        await reader.readexactly(length)
        latencies.append(time.perf_counter() - started)
        if not answer.startswith(b"HTTP/1.1 200"):
            errors.append(answer.split(b"\r\n", 1)[0])
    writer.close()

async def main(port, clients, rows, seconds):
    body = json.dumps({"instances": rows}).encode()
    latencies, errors = [], []
    deadline = time.perf_counter() + seconds
    started = time.perf_counter()
    await asyncio.gather(*(one(port, body, deadline, latencies, errors) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    print(json.dumps({"requests": len(latencies), "rps": len(latencies) / elapsed, "p50_ms": pick(0.5),
                      "p99_ms": pick(0.99), "errors": len(errors)}))

port, clients, rows_per, seconds, sample = sys.argv[1:6]
rows = json.loads(open(sample).read())["instances"]
asyncio.run(main(int(port), int(clients), [rows[i % len(rows)] for i in range(int(rows_per))], float(seconds)))
'''


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_ready(port: int, seconds: float = 30) -> None:
    """Until the server on `port` answers /ping."""
    for _ in range(int(seconds * 10)):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)


def drive(python: Path, repo: Path, port: int, clients: int, rows: int, seconds: float) -> dict:
    """One load scenario against the server on `port`, from another process: its requests/s, p50, p99, errors."""
    out = subprocess.run([str(python), "-c", CLIENT, str(port), str(clients), str(rows), str(seconds),
                          str(repo / "artifacts" / "sample.json")], capture_output=True, text=True, check=True).stdout
    return {"clients": clients, "rows": rows, **json.loads(out)}


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def ping_during_heavy(port: int, repo: Path) -> dict:
    """GET /ping timings while the heaviest allowed request (10,000 rows) runs, three times."""
    import threading

    rows = json.loads((repo / "artifacts" / "sample.json").read_text())["instances"]
    body = json.dumps({"instances": [rows[i % len(rows)] for i in range(10_000)]}).encode()
    timings = []
    for _ in range(3):
        request = urllib.request.Request(f"http://127.0.0.1:{port}/invocations", data=body,
                                         headers={"content-type": "application/json"})
        heavy = threading.Thread(target=lambda r=request: urllib.request.urlopen(r, timeout=120).read())
        heavy.start()
        while heavy.is_alive():
            started = time.perf_counter()
            urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=10).close()
            timings.append(time.perf_counter() - started)
        heavy.join()
    timings.sort()
    result = {"pings": len(timings), "ping_p50_ms": timings[len(timings) // 2] * 1000, "ping_max_ms": timings[-1] * 1000}
    print(f"/ping during a 10,000-row request ({len(body) // 1024} KB): {result['pings']} pings, "
          f"median {result['ping_p50_ms']:.1f} ms, max {result['ping_max_ms']:.1f} ms", flush=True)
    return result


def run_mode(python: Path, repo: Path, batch: int, scenarios, seconds: float) -> list[dict]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(repo / "src")}
    server = subprocess.Popen([str(python), "-m", "my_ml_project", "serve", "--port", str(port),
                               "--max-batch-size", str(batch), "--max-in-flight", "1000"],
                              cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_ready(port)
        idle = memory_kb(server.pid, "VmRSS")
        results = []
        for clients, rows in scenarios:
            result = {"batch": batch, **drive(python, repo, port, clients, rows, seconds)}
            result["peak_over_idle_mb"] = (memory_kb(server.pid, "VmHWM") - idle) / 1024
            results.append(result)
            print(f"max_batch_size={batch:<3} clients={clients:<4} rows={rows:<4} {result['rps']:8.1f} req/s "
                  f"p50 {result['p50_ms']:7.1f} ms  p99 {result['p99_ms']:7.1f} ms  errors {result['errors']}  "
                  f"peak +{result['peak_over_idle_mb']:.0f} MB", flush=True)
        results.append(ping_during_heavy(port, repo))
        return results
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    from tests.helpers import project_python, render

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo", clouds=["gcp"])
        python = project_python(repo, ["local", "dev"], label="project")
        subprocess.run([str(python), "-m", "my_ml_project", "train"], cwd=repo, check=True,
                       env={**os.environ, "PYTHONPATH": str(repo / "src")}, stdout=subprocess.DEVNULL)
        scenarios = [(1, 1), (200, 1), (20, 100)]
        for batch in (256, 1):
            run_mode(python, repo, batch, scenarios, args.seconds)


if __name__ == "__main__":
    main()
