"""Batch scoring on this machine: a file or folder of CSV, Parquet or JSON lines, streamed in chunks
(memory stays flat whatever the input's size), each row checked against the model's input schema.

A row that cannot be scored (a value of the wrong type, a missing value where training had none, an
unknown column holding a value) goes to the rejects file next to the output with its reason; the
others are scored. The output keeps the id columns and adds the prediction (and, for classification,
one probability column per class), in the input's format. Output and rejects are written to
temporary names and renamed at the end: a failed run leaves nothing half-written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from . import schema as schema_lib
from .errors import ConfigError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl", ".json": "jsonl"}


@dataclass
class Summary:
    read: int = 0
    scored: int = 0
    rejected: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def reject_rate(self) -> float:
        return self.rejected / self.read if self.read else 0.0


def _remote(location: str) -> bool:
    return "://" in location


def _open(location: str, mode: str):
    """A local file, or a URI (s3://, gs://, abfs://: the cloud extra's fsspec filesystem)."""
    if _remote(location):
        import fsspec

        return fsspec.open(location, mode, **({"encoding": "utf-8", "newline": ""} if "t" in mode else {})).open()
    return open(location, mode, **({"encoding": "utf-8", "newline": ""} if "t" in mode else {}))


def input_files(location: str) -> list[str]:
    """The files to score: `location` itself, or the supported files of a folder (sorted)."""
    if _remote(location):
        import fsspec

        fs, path = fsspec.core.url_to_fs(location)
        is_dir, exists = fs.isdir(path), fs.exists(path)
        listing = [fs.unstrip_protocol(p) for p in fs.find(path)] if is_dir else []
    else:
        path = Path(location)
        is_dir, exists = path.is_dir(), path.exists()
        listing = [str(p) for p in path.rglob("*") if p.is_file()] if is_dir else []
    if is_dir:
        files = sorted(p for p in listing if Path(p).suffix.lower() in FORMATS)
        if not files:
            raise ConfigError(f"--input {location}: no .csv, .parquet or .jsonl file in this folder")
        return files
    if not exists:
        raise ConfigError(f"--input {location}: not found")
    if Path(location).suffix.lower() not in FORMATS:
        raise ConfigError(f"--input {location}: expected .csv, .parquet or .jsonl")
    return [location]


def chunks(location: str, kind: str, rows: int, sep: str, schema: list[dict]) -> Iterator[pd.DataFrame]:
    """The file in frames of at most `rows` rows. CSV: numbers parsed by pandas' C parser (a column
    with a non-number in it stays text, and `check` names the row), categories kept as text."""
    if kind == "parquet":
        import pyarrow.parquet as pq

        with _open(location, "rb") as handle:
            for batch in pq.ParquetFile(handle).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        return
    with _open(location, "rt") as handle:
        if kind == "csv":
            text = {c["name"]: str for c in schema if c["kind"] != "numeric"}
            # low_memory=False: each chunk's columns are typed as a whole (a chunk is bounded anyway)
            yield from pd.read_csv(handle, sep=sep, chunksize=rows, dtype=text, low_memory=False)
        else:
            yield from pd.read_json(handle, lines=True, chunksize=rows, dtype=False)


def _prefetched(frames: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """The next chunk is read and parsed in a thread while this one is scored (the parsers and the
    trees' predict release the GIL): two cores busy instead of one, one more chunk in memory. When the
    consumer stops early (a bad file), the reader stops too and the file is closed."""
    import queue
    import threading

    ahead: queue.Queue = queue.Queue(maxsize=1)
    stop, done = threading.Event(), object()

    def hand_over(item) -> bool:
        while not stop.is_set():
            try:
                ahead.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read() -> None:
        try:
            for frame in frames:
                if not hand_over(frame):
                    return
            hand_over(done)
        except BaseException as exc:  # raised again in the consumer, where the file is named
            hand_over(exc)
        finally:
            frames.close()

    reader = threading.Thread(target=read, name="batch-read", daemon=True)
    reader.start()
    try:
        while (item := ahead.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        reader.join()


def check(frame: pd.DataFrame, schema: list[dict], allowed: set[str]) -> tuple[pd.DataFrame, pd.Series]:
    """(the typed frame of the rows that can be scored, the reason of every other row, by index).
    A row's first problem is its reason. Clean chunks (the usual case) cost a few vectorised checks."""
    problems: list[tuple[np.ndarray, str]] = []
    for column in frame.columns:
        if column not in allowed:
            problems.append((~_missing(frame[column]).to_numpy(), f"unknown column {column!r}"))
    typed = {}
    for column in schema:
        name = column["name"]
        if name not in frame.columns:
            problems.append((np.ones(len(frame), dtype=bool), f"column {name!r} is missing"))
            typed[name] = np.full(len(frame), np.nan if column["kind"] == "numeric" else None)
            continue
        raw = frame[name]
        missing = _missing(raw).to_numpy()
        if not column["nullable"]:
            problems.append((missing, f"column {name!r}: a value is required (training had none missing)"))
        if column["kind"] == "numeric":
            if pd.api.types.is_numeric_dtype(raw) and not pd.api.types.is_bool_dtype(raw):
                numbers = raw.to_numpy(dtype="float64", na_value=np.nan)
                bad = np.isinf(numbers)
            else:
                numbers = pd.to_numeric(raw.where(~missing), errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
                bad = ~missing & ~np.isfinite(numbers)
            problems.append((bad, f"column {name!r}: not a finite number"))
            typed[name] = numbers
        else:
            values = raw.astype(object).where(~missing, None)
            problems.append((values.map(lambda v: isinstance(v, (dict, list))).to_numpy(dtype=bool),
                             f"column {name!r}: not a category"))
            typed[name] = values.map(lambda v: v if v is None else schema_lib._category(v)).to_numpy()
    problems = [(mask, reason) for mask, reason in problems if mask.any()]
    if not problems:
        return pd.DataFrame(typed, index=frame.index), pd.Series(dtype=object)
    reasons = np.full(len(frame), None, dtype=object)
    for mask, reason in problems:
        reasons[mask & (reasons == None)] = reason  # noqa: E711 (elementwise on an object array)
    good = reasons == None  # noqa: E711
    kept = pd.DataFrame({name: values[good] for name, values in typed.items()}, index=frame.index[good])
    return kept, pd.Series(reasons[~good], index=frame.index[~good], dtype=object)


def _missing(values: pd.Series) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values.isna()
    text = values.astype(str).str.strip().str.lower()
    return values.isna() | text.isin(["", "nan", "null", "na", "none"])


class Writer:
    """Appends frames to one output in its format under a temporary name; `commit` renames it into
    place, `abort` removes it."""

    def __init__(self, location: str, kind: str) -> None:
        self.location, self.kind, self.rows = location, kind, 0
        self.tmp = f"{location}.partial"
        if not _remote(location):
            Path(location).parent.mkdir(parents=True, exist_ok=True)
        self.handle = _open(self.tmp, "wb")
        self.parquet = None

    def write(self, frame: pd.DataFrame) -> None:
        if self.kind == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(self.handle, table.schema)
            self.parquet.write_table(table.cast(self.parquet.schema))
        elif self.kind == "csv":
            self.handle.write(frame.to_csv(index=False, header=self.rows == 0).encode())
        else:
            self.handle.write(frame.to_json(orient="records", lines=True).encode())
        self.rows += len(frame)

    def commit(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        self.handle.close()
        if _remote(self.location):
            import fsspec

            fs, path = fsspec.core.url_to_fs(self.tmp)
            fs.mv(path, fsspec.core.url_to_fs(self.location)[1])
        else:
            Path(self.tmp).replace(self.location)

    def abort(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        self.handle.close()
        if _remote(self.location):
            import fsspec

            fs, path = fsspec.core.url_to_fs(self.tmp)
            if fs.exists(path):
                fs.rm(path)
        else:
            Path(self.tmp).unlink(missing_ok=True)


def rejects_location(output: str) -> str:
    """Next to the output: scores.csv -> scores.rejects.csv."""
    stem, dot, suffix = output.rpartition(".")
    return f"{stem}.rejects.{suffix}" if dot and "/" not in suffix else f"{output}.rejects"


def score(pipeline, meta: dict, inputs: list[str], output: str, id_columns: list[str], allowed_extra: set[str],
          chunk_rows: int, sep: str, progress: Callable[[int], None] = lambda n: None) -> Summary:
    """Score every input file into `output` (and rejects next to it); returns the counts."""
    schema = meta["schema"]
    if Path(output).suffix.lower() not in FORMATS:
        raise ConfigError(f"--output {output}: expected a .csv, .parquet or .jsonl name")
    out_kind = FORMATS[Path(output).suffix.lower()]
    allowed = {c["name"] for c in schema} | set(id_columns) | allowed_extra
    scored = Scorer(pipeline, meta.get("classes") if meta["task"] == "classification" else None)
    started, summary = time.perf_counter(), Summary()
    writer, rejects = Writer(output, out_kind), Writer(rejects_location(output), out_kind)
    try:
        offset = 0
        for location in inputs:
            file_kind = FORMATS[Path(location).suffix.lower()]
            for frame in _prefetched(chunks(location, file_kind, chunk_rows, sep, schema)):
                frame.index = range(offset, offset + len(frame))
                offset += len(frame)
                missing_ids = [c for c in id_columns if c not in frame.columns]
                if missing_ids:
                    raise ConfigError(f"--input {location}: id column(s) {', '.join(missing_ids)} missing "
                                      "(batch.id_columns)")
                typed, reasons = check(frame, schema, allowed)
                if len(typed):
                    writer.write(scored(typed, frame.loc[typed.index, id_columns]))
                if len(reasons):
                    bad = frame.loc[reasons.index].astype(str).assign(_row=reasons.index, _reason=reasons.values)
                    rejects.write(bad)
                    for reason, count in reasons.value_counts().items():
                        summary.reasons[reason] = summary.reasons.get(reason, 0) + int(count)
                summary.read += len(frame)
                summary.scored += len(typed)
                summary.rejected += len(reasons)
                progress(len(frame))
        if writer.rows == 0:  # an empty result is still a well-formed file with the columns
            writer.write(scored(pd.DataFrame({c["name"]: [] for c in schema}), pd.DataFrame({c: [] for c in id_columns})))
        writer.commit()
        if rejects.rows:
            rejects.commit()
        else:
            rejects.abort()
    except BaseException:
        writer.abort()
        rejects.abort()
        raise
    summary.seconds = time.perf_counter() - started
    return summary


class Scorer:
    """Predictions (and class probabilities) of one model for chunk after chunk."""

    def __init__(self, pipeline, classes: list | None) -> None:
        self.pipeline = pipeline
        self.classes = classes if classes is not None and hasattr(pipeline, "predict_proba") else None
        self.argmax_is_predict: bool | None = None

    def __call__(self, typed: pd.DataFrame, ids: pd.DataFrame) -> pd.DataFrame:
        out = ids.reset_index(drop=True).copy()
        if len(typed) == 0:
            out["prediction"] = pd.Series(dtype="float64")
            return out
        if self.classes is None:
            out["prediction"] = self.pipeline.predict(typed)
            return out
        proba = self.pipeline.predict_proba(typed)
        out["prediction"] = self._decided(typed, proba)
        for i, label in enumerate(self.classes):
            out[f"proba_{label}"] = proba[:, i]
        return out

    def _decided(self, typed: pd.DataFrame, proba: np.ndarray) -> np.ndarray:
        """The classes of highest probability: what scikit-learn's classifiers predict, without walking
        every tree a second time. Checked on the first chunk against the model's own predict(): a model
        that decides otherwise (a tuned threshold) is asked predict() on every chunk."""
        decided = np.asarray(self.classes, dtype=object)[proba.argmax(axis=1)]
        if self.argmax_is_predict is None:
            rows = slice(0, min(len(typed), 2000))
            self.argmax_is_predict = bool(np.all(self.pipeline.predict(typed.iloc[rows]).astype(object)
                                                 == decided[rows]))
        return decided if self.argmax_is_predict else self.pipeline.predict(typed)
