"""A request's body -> the rows it holds, checked against the model's schema (4xx errors naming what is
wrong). Its own module, light on imports: bodies too large for a thread are parsed in a separate process
(serving.py), which imports this and pandas, not scikit-learn or the web framework."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from . import schema as schema_lib


class HTTPError(Exception):
    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)  # all arguments: it crosses process boundaries
        self.status, self.message, self.headers = status, message, headers or {}


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPError(400, f"body is not UTF-8 text (byte offset {exc.start})") from None


def _constant(name: str) -> float:
    """NaN stands for a missing value (accepted where the schema allows one); Infinity never is."""
    if name == "NaN":
        return float("nan")
    raise ValueError(f"{name} is not a finite number")


def parse_json(body: bytes) -> Any:
    try:
        return json.loads(_decode(body), parse_constant=_constant)
    except RecursionError:
        raise HTTPError(400, "body is nested too deeply") from None
    except ValueError as exc:  # malformed JSON, NaN/Infinity literals, an integer past Python's digit limit
        raise HTTPError(400, f"body is not valid JSON: {str(exc)[:160]}") from None


def parse_csv(body: bytes) -> list[list[str]]:
    try:
        return [row for row in csv.reader(io.StringIO(_decode(body))) if row]
    except csv.Error as exc:
        raise HTTPError(400, f"body is not valid CSV: {exc}") from None


def _rows_of(path: str, content_type: str, body: bytes) -> Any:
    """The request's rows by the route's contract."""
    media = content_type.split(";", 1)[0].strip().lower()
    if path == "/invocations" and media == "text/csv":
        return parse_csv(body)
    if media not in ("application/json", "", "*/*"):
        raise HTTPError(415, f"unsupported content type {media!r}: send application/json"
                             + (" or text/csv" if path == "/invocations" else ""))
    payload = parse_json(body)
    if path == "/score":
        if isinstance(payload, dict) and isinstance(payload.get("input_data"), dict):
            payload = payload["input_data"]
        return payload.get("data") if isinstance(payload, dict) else None
    if path == "/invocations" and isinstance(payload, list):
        return payload
    return payload.get("instances") if isinstance(payload, dict) else None


def prepare(path: str, content_type: str, body: bytes, schema: list[dict], max_rows: int,
            as_frame: bool = False):
    """Parse the body and check every row against the schema: typed rows, or their frame."""
    rows = _rows_of(path, content_type, body)
    if isinstance(rows, list) and len(rows) > max_rows:
        raise HTTPError(413, f"{len(rows)} rows is over the limit of {max_rows} per request")
    try:
        checked = schema_lib.check_rows(rows, schema)
    except schema_lib.SchemaError as exc:
        raise HTTPError(400, str(exc)) from None
    return schema_lib.frame(checked, schema) if as_frame else checked
