"""The captured traffic of a window, read column-wise (pyarrow's multi-threaded JSON reader: a
million captured rows in seconds), or a file of rows to score (a batch input) read the same way."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from ..errors import ConfigError


@dataclass
class Traffic:
    features: pd.DataFrame           # one column per schema feature
    predictions: pd.Series | None    # None for a file of inputs only
    keys: pd.DataFrame | None        # request_id, row: to join labels that arrive later
    window: str                      # what was read, in words


def _arrow_schema(schema: list[dict]):
    import pyarrow as pa

    features = pa.struct([(c["name"], pa.float64() if c["kind"] == "numeric" else pa.string()) for c in schema])
    return pa.schema([("request_id", pa.string()), ("row", pa.int64()), ("time", pa.timestamp("ms", tz="UTC")),
                      ("model_version", pa.string()), ("features", features)])


def _read_file(path: Path, schema: list[dict]):
    import pyarrow.json as pj

    options = pj.ParseOptions(explicit_schema=_arrow_schema(schema), unexpected_field_behavior="infer")
    return pj.read_json(path, parse_options=options, read_options=pj.ReadOptions(block_size=8 << 20))




def _columns(path: Path, schema: list[dict], since, version: str | None, keys: tuple[str, ...]) -> tuple[dict, dict] | None:
    """One capture file as NumPy columns, filtered to the window: ({feature: values}, {KEYS: values})."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    table = _read_file(path, schema)
    if since is not None:
        table = table.filter(pc.greater_equal(table["time"], pa.scalar(since, pa.timestamp("ms", tz="UTC"))))
    if version is not None:
        table = table.filter(pc.equal(table["model_version"], version))
    if table.num_rows == 0:
        return None
    features = table["features"].combine_chunks()
    values = {c["name"]: features.field(c["name"]).to_numpy(zero_copy_only=False) for c in schema}
    extra = {k: table[k].to_numpy() if k in table.column_names else np.full(table.num_rows, None) for k in keys}
    return values, extra


def captured(folder: Path, schema: list[dict], hours: float | None, rows: int | None,
             version: str | None = None, with_keys: bool = False) -> Traffic:
    """The last `hours` (or the last `rows` rows) captured in `folder`, of `version` when given (a
    monitor compares the traffic a version answered with that version's training data). Files are
    parsed in parallel, newest first, and kept as NumPy columns: a million rows of 30 features fit
    in a few hundred MB. Request ids are read only `with_keys` (to join labels that arrived)."""
    import numpy as np

    files = sorted(folder.glob("capture-*.jsonl"), key=lambda p: p.name, reverse=True) if folder.is_dir() else []
    since = datetime.now(UTC) - timedelta(hours=hours) if hours is not None else None
    if since is not None:  # a file last written before the window holds nothing of it
        files = [f for f in files if datetime.fromtimestamp(f.stat().st_mtime, UTC) >= since]
    files = [f for f in files if f.stat().st_size > 0]
    wanted = ("prediction", "request_id", "row") if with_keys else ("prediction",)
    parts, count, workers = [], 0, os.cpu_count() or 2
    with ThreadPoolExecutor(max_workers=workers) as pool:  # pyarrow parses without holding the GIL
        for start in range(0, len(files), workers):
            for part in pool.map(lambda f: _columns(f, schema, since, version, wanted), files[start:start + workers]):
                if part is not None:
                    parts.append(part)
                    count += len(part[1]["prediction"])
            if rows is not None and count >= rows:
                break
    label = f"last {hours:g} h" if hours is not None else f"last {rows} rows"
    label += f" of version {version}" if version is not None else ""
    parts.reverse()  # oldest first, so "the last rows" are the tail

    def column(which: int, name: str, dtype=None):
        values = np.concatenate([p[which][name] for p in parts]) if parts else np.array([], dtype=dtype or object)
        return values[-rows:] if rows is not None else values

    features = pd.DataFrame({c["name"]: column(0, c["name"], "float64" if c["kind"] == "numeric" else object)
                             for c in schema}, copy=False)
    keys = (pd.DataFrame({"request_id": column(1, "request_id"), "row": column(1, "row", "int64")})
            if with_keys else None)
    return Traffic(features, pd.Series(column(1, "prediction")), keys, label)


def from_file(location: str, schema: list[dict], sep: str = ",") -> Traffic:
    """Rows of a CSV, Parquet or JSON-lines file (a path, or a URI the installed fsspec filesystems
    read: s3://, gs://, abfs://) with the feature columns; other columns are ignored."""
    suffix = Path(location.split("?", 1)[0]).suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(location)
        elif suffix in (".jsonl", ".json"):
            frame = pd.read_json(location, lines=True)
        else:
            frame = pd.read_csv(location, sep=sep)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"--input {location}: cannot read it ({exc})") from None
    missing = [c["name"] for c in schema if c["name"] not in frame.columns]
    if missing:
        raise ConfigError(f"--input {location}: columns missing: {', '.join(missing[:10])}")
    return Traffic(frame[[c["name"] for c in schema]], None, None, f"{Path(location).name} ({len(frame)} rows)")
