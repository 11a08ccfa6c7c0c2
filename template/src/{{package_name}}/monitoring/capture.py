"""What the local endpoint was asked and answered, as JSON lines under `.mlops/capture/<env>/`.

One line per row: {"request_id", "row", "time", "model_version", "features": {name: value},
"prediction"}: the shape SageMaker's data capture and Vertex's request-response logging keep, one
row at a time so a monitor reads it column-wise. The request path only puts the request on a bounded
queue (never waits, never fails: a full queue drops the record and counts it); a child process
encodes and writes.
Files rotate at a tenth of the budget and the oldest are deleted, so disk use stays under
`monitoring.capture_max_mb` whatever the traffic.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import queue
import random
import time
from datetime import UTC, datetime
from pathlib import Path

FILES_PER_BUDGET = 10


def _json_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value


class CaptureWriter:
    """Recorder of answered requests. Encoding JSON costs ~15 us a row: done in this process it would
    compete with the event loop for the GIL (p99 latency +12 % at 5,000 rows/s), so a child process
    encodes and writes; the request path only samples and enqueues (pickling a few rows: microseconds)."""

    def __init__(self, folder: Path, percent: float, max_mb: float, version: str,
                 max_queue: int = 10_000) -> None:
        self.folder, self.percent, self.version = folder, percent, version
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.file_bytes = max(self.max_bytes // FILES_PER_BUDGET, 64 * 1024)
        folder.mkdir(parents=True, exist_ok=True)
        context = multiprocessing.get_context("spawn")  # the server runs threads: never fork it
        self.queue = context.Queue(maxsize=max_queue)
        self._written = context.Value("q", 0)
        self.dropped = 0
        self.process = context.Process(target=_write_loop, name="capture", daemon=True, args=(
            folder, self.max_bytes, self.file_bytes, self.queue, self._written))
        self.process.start()

    @property
    def written(self) -> int:
        """Rows written so far."""
        return self._written.value

    def record(self, request_id: str, names: list[str], rows, predictions: list, version: str | None = None
               ) -> None:
        """Called on the request path: sample, enqueue, return. `rows` are typed rows or a frame;
        `version`: the model's that answered (a server can swap models), else the writer's."""
        if self.percent < 100 and random.random() * 100 >= self.percent:
            return
        try:
            self.queue.put_nowait((version or self.version, request_id, time.time(), names, rows, predictions))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Write what is queued, then stop (the server's shutdown); a stuck writer is killed."""
        try:
            self.queue.put(None, timeout=30)
        except queue.Full:
            pass
        self.process.join(timeout=30)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.queue.close()
        self.queue.join_thread()


def _write_loop(folder: Path, max_bytes: int, file_bytes: int, inbox, written) -> None:
    """The writer process: what queued up meanwhile goes out in one write, files rotate at
    `file_bytes` and the oldest are deleted to stay within `max_bytes`."""
    files = _Files(folder, max_bytes, file_bytes)
    stopping = False
    while not stopping:
        items = [inbox.get()]
        while len(items) < 256:
            try:
                items.append(inbox.get_nowait())
            except queue.Empty:
                break
        stopping = None in items
        lines = [line for item in items if item is not None for line in _lines(*item)]
        try:
            files.write(("\n".join(lines) + "\n").encode() if lines else b"")
            with written.get_lock():
                written.value += len(lines)
        except OSError:  # a full disk must never take the server down: those rows are lost, counted
            pass
    files.close()


def _lines(version: str, request_id: str, at: float, names: list[str], rows, predictions: list) -> list[str]:
    stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if hasattr(rows, "columns"):
        rows = rows.astype(object).itertuples(index=False)
    return [json.dumps({"request_id": request_id, "row": index, "time": stamp, "model_version": version,
                        "features": {n: _json_value(v) for n, v in zip(names, row, strict=True)},
                        "prediction": prediction}, default=str)
            for index, (row, prediction) in enumerate(zip(rows, predictions, strict=False))]


class _Files:
    def __init__(self, folder: Path, max_bytes: int, file_bytes: int) -> None:
        self.folder, self.max_bytes, self.file_bytes = folder, max_bytes, file_bytes
        self.handle, self.size = None, 0

    def write(self, data: bytes) -> None:
        if not data:
            return
        if self.handle is None or self.size >= self.file_bytes:
            self._rotate()
        self.handle.write(data)
        self.handle.flush()
        self.size += len(data)

    def _rotate(self) -> None:
        self.close()
        name = f"capture-{time.time_ns()}-{os.getpid()}.jsonl"
        self.handle, self.size = open(self.folder / name, "ab"), 0
        files = sorted(self.folder.glob("capture-*.jsonl"), key=lambda p: p.name)
        total = sum(p.stat().st_size for p in files)
        for old in files[:-1]:  # never the file just opened
            if total <= self.max_bytes - self.file_bytes:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)

    def close(self) -> None:
        if self.handle:
            self.handle.close()
            self.handle = None
