"""One predict() behind every cloud's inference contract, served like a production model server.

The same app answers
- SageMaker:  GET /ping, POST /invocations (JSON {"instances": [...]} or text/csv rows)
- Vertex AI:  GET /health, POST /predict   ({"instances": [...]} -> {"predictions": [...]}), and the
              routes named by AIP_HEALTH_ROUTE / AIP_PREDICT_ROUTE when Vertex sets them
- Azure ML:   POST /score                  ({"data": [...]} or {"input_data": {"data": [...]}}), and
              GET / /live /ready as a custom container's liveness and readiness routes
so the local deployment is a faithful stand-in for the clouds' serving containers.

What it does with every request (the behaviour of KServe's model server, MLServer and the SageMaker
scikit-learn container, see the README): a bad request is a 4xx naming the row, column or byte, never
a 500; the body is bounded (413 from Content-Length, or while reading a chunked body), and so are the
rows per request and the requests in flight (503 with Retry-After); parsing and prediction run in
worker threads, so health checks answer while the heaviest request runs; concurrent requests are
gathered into one predict call (adaptive batching) and each gets exactly its own rows back.

A server started with an admin port (the local target's deployments) also takes `POST /-/model` there:
it loads another bundle and serves it from the next request on, so a local redeploy or rollback takes
the time of loading a model, not of starting a Python process (see targets/local.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
import json
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import contract
from . import model as model_lib
from . import schema as schema_lib
from .metrics import ServerMetrics
from .request_body import HTTPError, prepare

BadRequest = schema_lib.SchemaError  # a request that does not fit the model's input schema: a 400
log = logging.getLogger("serving")


def predict(pipeline, meta: dict, instances: Any) -> list:
    """Predictions, with the training labels, for rows checked and typed by the model's input schema."""
    frame = schema_lib.rows_to_frame(instances, meta["schema"])
    return [contract.plain(p) for p in pipeline.predict(frame)]


@dataclass(frozen=True)
class Limits:
    """Bounds of the server (mlops.yaml `serving:` and `serve` flags)."""

    max_body_mb: float = 16.0         # below Azure ML's 25 MB request limit, above SageMaker's 6 MB
    max_rows: int = 10_000
    max_in_flight: int = 64
    max_batch_size: int = 256         # rows gathered into one predict call; 1 turns batching off
    max_batch_wait_ms: float = 5.0
    workers: int = max(2, os.cpu_count() or 2)

    @property
    def max_body_bytes(self) -> int:
        return int(self.max_body_mb * 1024 * 1024)


@dataclass(frozen=True)
class Served:
    """The model being served. A request takes the one current when it arrives and keeps it to its
    end, so a swap never answers a request with parts of two models."""

    pipeline: Any
    meta: dict
    version: str

    @property
    def names(self) -> list[str]:
        return [c["name"] for c in self.meta["schema"]]


def load_served(model_dir: Path, version: str) -> Served:
    pipeline, meta = model_lib.load(model_dir)
    return Served(pipeline, meta, version)


class Batcher:
    """Gathers the checked rows of concurrent requests into one predict call in a worker thread.

    Adaptive: a request that finds no other request on its way waits for nobody; otherwise the batch
    closes at `max_batch_size` rows or after `max_batch_wait_ms`.
    """

    def __init__(self, limits: Limits, executor: ThreadPoolExecutor, metrics: ServerMetrics) -> None:
        self.limits, self.executor, self.metrics = limits, executor, metrics
        self.arriving = 0        # requests being read and checked: they may join the current batch
        self.loop: asyncio.AbstractEventLoop | None = None
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None

    def _predict(self, served: Served, rows) -> list:
        """Predict typed rows (built into a frame here) or a ready frame."""
        self.metrics.batch(len(rows))
        frame = rows if hasattr(rows, "columns") else schema_lib.frame(rows, served.meta["schema"])
        return [contract.plain(p) for p in served.pipeline.predict(frame)]

    async def predict(self, served: Served, rows) -> list:
        loop = asyncio.get_running_loop()
        if self.limits.max_batch_size <= 1 or len(rows) >= self.limits.max_batch_size or hasattr(rows, "columns"):
            return await loop.run_in_executor(self.executor, self._predict, served, rows)
        if self.loop is not loop:  # one queue per event loop (test clients run one per request)
            self.loop, self.queue = loop, asyncio.Queue()
            self.task = loop.create_task(self._loop(self.queue))
        future = loop.create_future()
        await self.queue.put((served, rows, future))
        return await future

    async def _loop(self, queue: asyncio.Queue) -> None:
        loop = asyncio.get_running_loop()
        held = None  # a request for another model than the batch's (a swap): it opens the next batch
        while True:
            batch = [held or await queue.get()]
            held, served, size = None, batch[0][0], len(batch[0][1])
            deadline = loop.time() + self.limits.max_batch_wait_ms / 1000
            while size < self.limits.max_batch_size and (self.arriving or not queue.empty()):
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    item = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    break
                if item[0] is not served:
                    held = item
                    break
                batch.append(item)
                size += len(item[1])
            try:
                merged = [row for _, rows, _ in batch for row in rows]
                predictions = await loop.run_in_executor(self.executor, self._predict, served, merged)
            except Exception:  # isolate: predict each request alone, so a failure is only its own
                for _, rows, future in batch:
                    try:
                        future.set_result(await loop.run_in_executor(self.executor, self._predict, served, rows))
                    except Exception as exc:
                        future.set_exception(exc)
                continue
            start = 0
            for _, rows, future in batch:
                if not future.done():
                    future.set_result(predictions[start:start + len(rows)])
                start += len(rows)


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 before reading when Content-Length says too much, or as soon as a
    streamed (chunked) body passes the limit."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPError(400, "Content-Length is not a number")
        if int(declared) > limit:
            raise HTTPError(413, f"body of {int(declared)} bytes is over the limit of {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPError(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


# Bodies from this size on are parsed in a separate process: json.loads holds the GIL for the whole
# parse (~100 ms for 10 MB), which would stall health checks; smaller ones are parsed in threads.
PROCESS_PARSE_BYTES = 256 * 1024
PARSER_WARMUP_S = 10.0


def _media(header: str) -> str:
    return header.split(";", 1)[0].strip().lower()


def csv_answer(pipeline, meta: dict, checked, predictions: list) -> str:
    """The answer to Accept text/csv on /invocations (SageMaker Batch Transform), as the prebuilt container's
    script gives it (targets/aws/container.py): one line per row, the prediction, then for a classifier the
    probability of each class; no newline after the last line (AssembleWith Line adds one per answer)."""
    rows = [[p] for p in predictions]
    if meta.get("task") == "classification" and hasattr(pipeline, "predict_proba"):
        features = checked if hasattr(checked, "columns") else schema_lib.frame(checked, meta["schema"])
        rows = [[p, *q] for p, q in zip(predictions, pipeline.predict_proba(features).tolist(), strict=True)]
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue().removesuffix("\n")


def create_app(model_dir: Path, limits: Limits | None = None, capture=None, admin_port: int | None = None
               ) -> Starlette:
    """The app; `capture` (a monitoring.capture.CaptureWriter) records answered requests; `admin_port`:
    the port (of this server alone) on which `POST /-/model` swaps the model."""
    limits = limits or Limits()
    current = [load_served(model_dir, os.environ.get("MODEL_VERSION", "unknown"))]
    executor = ThreadPoolExecutor(max_workers=limits.workers, thread_name_prefix="predict")
    metrics = ServerMetrics(capture)
    batcher = Batcher(limits, executor, metrics)
    state = {"in_flight": 0}

    parsers: list[ProcessPoolExecutor] = []   # started on the first large body

    async def checked_rows(served: Served, path: str, content_type: str, body: bytes):
        """Off the event loop: small bodies in a thread (typed rows, batched later), large ones in a
        process (a frame, predicted alone)."""
        loop = asyncio.get_running_loop()
        schema = served.meta["schema"]
        if len(body) < PROCESS_PARSE_BYTES:
            return await loop.run_in_executor(executor, prepare, path, content_type, body, schema, limits.max_rows)
        return await loop.run_in_executor(parser(), prepare, path, content_type, body, schema, limits.max_rows, True)

    def parser() -> ProcessPoolExecutor:
        if not parsers:  # spawn, not fork: this process runs threads. The child imports request_body, not sklearn
            parsers.append(ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")))
            parsers[0].submit(schema_lib.check_rows, [[]], [])  # start it now: its imports take seconds
        return parsers[0]

    async def handle(request: Request) -> Response:
        started, request_id = time.perf_counter(), request.headers.get("x-request-id") or uuid.uuid4().hex
        path, status, rows, served = request.url.path, 500, 0, current[0]
        if state["in_flight"] >= limits.max_in_flight:
            status = 503
            response = JSONResponse({"error": f"{limits.max_in_flight} requests in flight: retry shortly",
                                     "request_id": request_id}, status_code=503, headers={"Retry-After": "1"})
        else:
            state["in_flight"] += 1
            metrics.in_flight.inc()
            batcher.arriving += 1
            try:
                try:
                    body = await read_body(request, limits.max_body_bytes)
                    checked = await checked_rows(served, path, request.headers.get("content-type", ""), body)
                finally:
                    batcher.arriving -= 1
                rows = len(checked)
                predictions = await batcher.predict(served, checked)
                status = 200
                if capture is not None:
                    capture.record(request_id, served.names, checked, predictions, served.version)
                if path == "/invocations" and _media(request.headers.get("accept", "")) == "text/csv":
                    # SageMaker Batch Transform (Accept text/csv, AssembleWith Line): one line per row
                    text = await asyncio.get_running_loop().run_in_executor(
                        executor, csv_answer, served.pipeline, served.meta, checked, predictions)
                    response = Response(text, media_type="text/csv")
                else:
                    response = JSONResponse({"predictions": predictions, "model_version": served.version})
            except HTTPError as exc:
                status = exc.status
                response = JSONResponse({"error": exc.message, "request_id": request_id}, status_code=exc.status,
                                        headers=exc.headers)
            except Exception:  # a bug: logged with the id the client sees, never a traceback to the client
                log.exception("request %s failed", request_id)
                response = JSONResponse({"error": "internal error", "request_id": request_id}, status_code=500)
            finally:
                state["in_flight"] -= 1
                metrics.in_flight.dec()
        seconds = time.perf_counter() - started
        metrics.request(path, status, seconds, rows if status == 200 else 0)
        log.info(json.dumps({"request_id": request_id, "route": path, "status": status, "rows": rows,
                             "latency_ms": round(seconds * 1000, 2)}))
        response.headers["x-request-id"] = request_id
        return response

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model_version": current[0].version})

    async def swap(request: Request) -> Response:
        """POST /-/model {"model_dir", "version"}, on the admin port only: load that bundle beside the one
        serving, then serve it from the next request on (requests under way finish with theirs)."""
        if admin_port is None or (request.scope.get("server") or (None, None))[1] != admin_port:
            return JSONResponse({"error": "not found"}, status_code=404)
        try:
            asked = json.loads(await request.body())
            model_dir, version = Path(asked["model_dir"]), str(asked["version"])
        except (ValueError, TypeError, KeyError):
            return JSONResponse({"error": 'send {"model_dir": ..., "version": ...}'}, status_code=400)
        try:
            served = await asyncio.get_running_loop().run_in_executor(executor, load_served, model_dir, version)
        except Exception as exc:  # the model serving now keeps serving
            return JSONResponse({"error": f"cannot load {model_dir}: {exc}"}, status_code=422)
        current[0] = served
        log.info(json.dumps({"event": "model swapped", "model_version": version, "model_dir": str(model_dir)}))
        return JSONResponse({"status": "ok", "model_version": version})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    predict_routes = {"/invocations", "/predict", "/score", os.environ.get("AIP_PREDICT_ROUTE") or "/predict"}
    # /ping SageMaker and Kubernetes probes; /health Vertex AI; / /live /ready Azure ML custom containers
    # (the liveness and readiness routes of the deployment's environment: the model loads before the app
    # starts, so the server is ready as soon as it answers).
    health_routes = {"/ping", "/health", "/", "/live", "/ready", os.environ.get("AIP_HEALTH_ROUTE") or "/health"}
    routes = [Route(p, health, methods=["GET"]) for p in sorted(health_routes)]
    routes += [Route(p, handle, methods=["POST"]) for p in sorted(predict_routes)]
    routes.append(Route("/metrics", prometheus, methods=["GET"]))
    routes.append(Route("/-/model", swap, methods=["POST"]))

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        # The parser process is warmed once the server has been up a while: its start-up (a Python importing
        # pandas, ~1 s of CPU) then never competes with the model's own start-up or a deployer's health
        # check, nor is paid by a server replaced within seconds; a large body before then starts it.
        warming = asyncio.get_running_loop().call_later(PARSER_WARMUP_S, parser)
        yield
        warming.cancel()
        if batcher.task is not None:
            batcher.task.cancel()
        executor.shutdown(wait=True)
        for pool in parsers:
            pool.shutdown(wait=True)
        if capture is not None:
            capture.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.limits, app.state.metrics, app.state.schema = limits, metrics, current[0].meta["schema"]
    return app


def _exit_when_replaced(state_file: Path, server) -> None:
    """A local deployment ends when its state file no longer names this process.

    That is how blue/green replacement drains the old server, and how deleting a workspace
    (e.g. after `mlops-gen ci run`) stops its servers: no process outlives its deployment record.
    """
    claimed, deadline = False, time.monotonic() + 60  # the deployer records us once we answer /ping
    while not server.should_exit:
        time.sleep(0.1)  # a blue/green switch waits for this: reading a small file 10 times a second is free
        try:
            owner = json.loads(state_file.read_text()).get("pid")
        except (OSError, ValueError):
            owner = None
        if owner == os.getpid():
            claimed = True
        elif claimed or time.monotonic() > deadline:
            server.should_exit = True


def _listen(host: str, port: int, shared: bool) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if shared:  # the next deployment of the environment binds the same port while this one drains
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    return sock


def serve(model_dir: Path, host: str, port: int, state_file: Path | None = None,
          health_port: int | None = None, limits: Limits | None = None, capture=None) -> None:
    """Serve on `port` (shared with the environment's next deployment), and on `health_port` when
    given: a port of this server alone, on the loopback, for the deployer's health checks and model
    swaps. SIGTERM drains in-flight requests (up to 30 s) and exits 0."""
    import uvicorn

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    config = uvicorn.Config(create_app(model_dir, limits, capture, admin_port=health_port), host=host, port=port, log_level="warning",
                            access_log=False, timeout_graceful_shutdown=30)
    server = uvicorn.Server(config)
    if state_file is not None:
        threading.Thread(target=_exit_when_replaced, args=(state_file, server), daemon=True).start()
    sockets = [_listen(host, port, shared=True)]
    if health_port is not None:  # health checks and model swaps: from this machine only (loading is unpickling)
        sockets.append(_listen("127.0.0.1", health_port, shared=False))
    # uvicorn drains on SIGTERM, then raises the signal again for the previous handler: a drained
    # server is a clean exit (0), as platforms expect when they scale in or replace a container.
    signal.signal(signal.SIGTERM, lambda *_: None)
    server.run(sockets=sockets)
