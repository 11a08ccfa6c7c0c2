"""One predict() behind every cloud's inference contract.

The same app answers
- SageMaker:  GET /ping, POST /invocations (JSON {"instances": [...]} or text/csv rows)
- Vertex AI:  GET /health, POST /predict   ({"instances": [...]} -> {"predictions": [...]})
- Azure ML:   POST /score                  ({"data": [...]} or {"input_data": {"data": [...]}})
so the local deployment is a faithful stand-in for the clouds' serving containers.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import model as model_lib
from . import schema as schema_lib

BadRequest = schema_lib.SchemaError  # a request that does not fit the model's input schema: a 400


def predict(pipeline, meta: dict, instances: Any) -> list:
    """Predictions, with the training labels, for rows checked and typed by the model's input schema."""
    frame = schema_lib.rows_to_frame(instances, meta["schema"])
    return [p.item() if hasattr(p, "item") else p for p in pipeline.predict(frame)]


def create_app(model_dir: Path) -> Starlette:
    pipeline, meta = model_lib.load(model_dir)
    version = os.environ.get("MODEL_VERSION", "unknown")

    async def read_json(request: Request) -> Any:
        try:
            return json.loads(await request.body())
        except UnicodeDecodeError as exc:
            raise BadRequest(f"body is not UTF-8 (byte {exc.start})") from None
        except ValueError as exc:  # malformed JSON, or an integer past Python's digit limit
            raise BadRequest(f"body is not valid JSON: {str(exc)[:120]}") from None

    def route(path: str, rows_of) -> Route:
        """POST `path`: rows_of(request) -> rows, answered as {"predictions": [...]} or a 400."""

        async def handle(request: Request) -> Response:
            try:
                predictions = predict(pipeline, meta, await rows_of(request))
            except BadRequest as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            return JSONResponse({"predictions": predictions, "model_version": version})

        return Route(path, handle, methods=["POST"])

    async def sagemaker_rows(request: Request) -> Any:
        if request.headers.get("content-type", "").startswith("text/csv"):
            try:
                text = (await request.body()).decode()
            except UnicodeDecodeError as exc:
                raise BadRequest(f"body is not UTF-8 (byte {exc.start})") from None
            return [row for row in csv.reader(io.StringIO(text)) if row]
        payload = await read_json(request)
        return payload.get("instances") if isinstance(payload, dict) else payload

    async def vertex_rows(request: Request) -> Any:
        payload = await read_json(request)
        return payload.get("instances") if isinstance(payload, dict) else None

    async def azure_rows(request: Request) -> Any:
        payload = await read_json(request)
        if isinstance(payload, dict) and isinstance(payload.get("input_data"), dict):
            payload = payload["input_data"]
        return payload.get("data") if isinstance(payload, dict) else None

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "model_version": version})

    return Starlette(
        routes=[
            Route("/ping", health),
            Route("/health", health),
            route("/invocations", sagemaker_rows),
            route("/predict", vertex_rows),
            route("/score", azure_rows),
        ]
    )


def _exit_when_replaced(state_file: Path, server) -> None:
    """A local deployment ends when its state file no longer names this process.

    That is how blue/green replacement drains the old server, and how deleting a workspace
    (e.g. after `mlops-gen ci run`) stops its servers: no process outlives its deployment record.
    """
    claimed, deadline = False, time.monotonic() + 60  # the deployer records us once we answer /ping
    while not server.should_exit:
        time.sleep(0.5)
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
    sock.listen(128)
    return sock


def serve(model_dir: Path, host: str, port: int, state_file: Path | None = None,
          health_port: int | None = None) -> None:
    """Serve on `port` (shared with the environment's next deployment), and on `health_port` when
    given: a port of this server alone, for the deployer's health check."""
    import uvicorn

    config = uvicorn.Config(create_app(model_dir), host=host, port=port, log_level="warning")
    server = uvicorn.Server(config)
    if state_file is not None:
        threading.Thread(target=_exit_when_replaced, args=(state_file, server), daemon=True).start()
    sockets = [_listen(host, port, shared=True)]
    if health_port is not None:
        sockets.append(_listen(host, health_port, shared=False))
    server.run(sockets=sockets)
