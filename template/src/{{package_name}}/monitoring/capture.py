"""What the local endpoint was asked and answered, as JSON lines under `.mlops/capture/<env>/`.

One line per row: {"request_id", "row", "time", "model_version", "features": {name: value},
"prediction"}: the shape SageMaker's data capture and Vertex's request-response logging keep, one
row at a time so a monitor reads it column-wise. The request path only puts the request on a bounded
queue (never waits, never fails: a full queue drops the record and counts it); one thread writes.
Files rotate at a tenth of the budget and the oldest are deleted, so disk use stays under
`monitoring.capture_max_mb` whatever the traffic.
"""

from __future__ import annotations

import json
import math
import os
import queue
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

FILES_PER_BUDGET = 10
_STOP = object()


def _json_value(value):
    return None if isinstance(value, float) and math.isnan(value) else value


class CaptureWriter:
    def __init__(self, folder: Path, percent: float, max_mb: float, version: str,
                 max_queue: int = 10_000) -> None:
        self.folder, self.percent, self.version = folder, percent, version
        self.max_bytes = int(max_mb * 1024 * 1024)
        self.file_bytes = max(self.max_bytes // FILES_PER_BUDGET, 64 * 1024)
        self.queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self.dropped = 0
        self.written = 0
        self._handle = None
        self._size = 0
        folder.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
        self._thread.start()

    def record(self, request_id: str, names: list[str], rows, predictions: list) -> None:
        """Called on the request path: sample, enqueue, return. `rows` are typed rows or a frame."""
        if self.percent < 100 and random.random() * 100 >= self.percent:
            return
        try:
            self.queue.put_nowait((request_id, time.time(), names, rows, predictions))
        except queue.Full:
            self.dropped += 1

    def close(self) -> None:
        """Write what is queued, then stop (the server's shutdown)."""
        try:
            self.queue.put(_STOP, timeout=30)
        except queue.Full:  # the writer is stuck (a hung disk): leave it, it is a daemon thread
            return
        self._thread.join(timeout=30)

    # -- the writer thread --------------------------------------------------------------------------
    def _run(self) -> None:
        stopping = False
        while not stopping:
            items = [self.queue.get()]
            while len(items) < 256:  # what queued up meanwhile goes out in one write
                try:
                    items.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            if _STOP in items:
                stopping = True
                items = [i for i in items if i is not _STOP]
            try:
                if items:
                    self._write(b"".join(self._lines(*item) for item in items))
            except Exception:  # a full disk or a bad value must never take the server down
                self.dropped += len(items)
        if self._handle:
            self._handle.close()

    def _lines(self, request_id: str, at: float, names: list[str], rows, predictions: list) -> bytes:
        stamp = datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        if hasattr(rows, "columns"):
            rows = rows.astype(object).itertuples(index=False)
        out = []
        for index, (row, prediction) in enumerate(zip(rows, predictions, strict=False)):
            features = {name: _json_value(value) for name, value in zip(names, row, strict=True)}
            out.append(json.dumps({"request_id": request_id, "row": index, "time": stamp,
                                   "model_version": self.version, "features": features,
                                   "prediction": prediction}, default=str))
        return ("\n".join(out) + "\n").encode()

    def _write(self, data: bytes) -> None:
        if self._handle is None or self._size >= self.file_bytes:
            self._rotate()
        self._handle.write(data)
        self._handle.flush()
        self._size += len(data)
        self.written += data.count(b"\n")

    def _rotate(self) -> None:
        if self._handle:
            self._handle.close()
        name = f"capture-{time.time_ns()}-{os.getpid()}.jsonl"
        self._handle, self._size = open(self.folder / name, "ab"), 0
        files = sorted(self.folder.glob("capture-*.jsonl"), key=lambda p: p.name)
        total = sum(p.stat().st_size for p in files)
        for old in files[:-1]:  # never the file just opened
            if total <= self.max_bytes - self.file_bytes:
                break
            total -= old.stat().st_size
            old.unlink(missing_ok=True)
