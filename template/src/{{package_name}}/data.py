"""Loading, checking and splitting the training data. Knows nothing about clouds.

Every data problem is a DataError (exit 2) in one line naming the file, the column and the count,
so a pipeline never trains on something nobody meant it to.
"""

from __future__ import annotations

import csv
import hashlib
import socket
import sys

import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from . import contract
from . import schema as schema_lib
from .config import Config
from .errors import DataError

READ_TIMEOUT_SECONDS = 20  # an unreachable URI fails in seconds, not minutes


def read_table(config: Config) -> pd.DataFrame:
    """The configured source as a frame, or a DataError naming it."""
    source = config.data.source
    if source.startswith("sklearn:"):
        bunch = getattr(datasets, f"load_{source.removeprefix('sklearn:')}")(as_frame=True)  # a name config checked
        return bunch.frame.rename(columns={bunch.target.name: config.data.target})
    location = source if "://" in source else str(config.root / source)
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(READ_TIMEOUT_SECONDS)
    try:
        if location.lower().endswith((".parquet", ".pq")):
            frame = pd.read_parquet(location)
        else:
            frame = pd.read_csv(location, sep=config.data.sep, encoding=config.data.encoding)
    except ImportError as exc:  # s3fs / adlfs / gcsfs: the cloud's extra brings its own
        raise DataError(f"data.source: cannot read {source}: {exc}") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"data.source: {source} is empty") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"data.source: {source} is not {config.data.encoding} text ({exc.reason} at byte "
                        f"{exc.start}); set data.encoding") from None
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"data.source: cannot read {source}: {first}") from None
    finally:
        socket.setdefaulttimeout(previous)
    duplicated = sorted({str(c) for c in frame.columns[frame.columns.duplicated()]} | _duplicate_header(config))
    if duplicated:
        raise DataError(f"data.source: {source} has duplicate column names: {', '.join(duplicated)}")
    if frame.empty:
        raise DataError(f"data.source: {source} has no rows")
    return frame


def _duplicate_header(config: Config) -> set[str]:
    """Column names given twice in a local CSV file (pandas would rename the second `x` to `x.1`)."""
    path = config.root / config.data.source
    if "://" in config.data.source or config.data.source.startswith("sklearn:") or path.suffix.lower() != ".csv":
        return set()
    with open(path, encoding=config.data.encoding, newline="") as handle:
        header = next(csv.reader(handle, delimiter=config.data.sep), [])
    return {name for name in header if header.count(name) > 1}


def load_frame(config: Config, *, report=print) -> tuple[pd.DataFrame, pd.Series]:
    """(features, label) of the configured source: every column used or refused by name."""
    frame = read_table(config)
    source, target = config.data.source, config.data.target
    if target not in frame.columns:
        raise DataError(f"data.target: column '{target}' not in {source} (columns: {', '.join(map(str, frame.columns))})")
    y = frame[target]
    missing = int(y.isna().sum())
    if missing:
        raise DataError(f"data.target: {missing} of {len(y)} rows of {source} have no '{target}' value")
    for key in ("features", "id_columns"):
        unknown = [c for c in getattr(config.data, key) if c not in frame.columns]
        if unknown:
            raise DataError(f"data.{key}: {', '.join(unknown)} not in {source}")
    _check_label(config, y)
    features = select_features(config, frame, report)
    return frame[features], y


def select_features(config: Config, frame: pd.DataFrame, report) -> list[str]:
    target, explicit = config.data.target, list(config.data.features)
    candidates = explicit or [c for c in frame.columns if c != target and c not in config.data.id_columns]
    if target in explicit:
        raise DataError(f"data.features: '{target}' is the target; it cannot be a feature")
    chosen, ignored = [], []
    for name in candidates:
        if frame[name].equals(frame[target]):
            raise DataError(f"data.features: column '{name}' is a copy of the target '{target}' "
                            "(the model would read the answer)")
        problem = schema_lib.column_problem(frame[name])
        if problem and explicit:
            raise DataError(f"data.features: column '{name}' {problem}")
        if problem:
            ignored.append(f"{name} ({problem})")
        elif schema_lib.looks_like_identifier(frame[name]) and not explicit:
            ignored.append(f"{name} (unique in every row: an identifier? list it in data.id_columns, or in "
                           "data.features to use it)")
        else:
            chosen.append(name)
    for line in ignored:
        report(f"data: column {line}: not used", file=sys.stderr)
    if not chosen:
        raise DataError(f"data.features: no usable feature column in {config.data.source}")
    return chosen


def _check_label(config: Config, y: pd.Series) -> None:
    if config.task == "regression":
        if not pd.api.types.is_numeric_dtype(y) or pd.api.types.is_bool_dtype(y):
            raise DataError(f"data.target: '{y.name}' is not numeric ({y.dtype}); is this task: classification?")
        return
    counts = y.value_counts()
    if pd.api.types.is_float_dtype(y) and (y % 1 != 0).any() or (
            pd.api.types.is_numeric_dtype(y) and len(counts) > max(20, len(y) // 10)):
        raise DataError(f"data.target: '{y.name}' looks continuous ({len(counts)} distinct values in "
                        f"{len(y)} rows); set task: regression in mlops.yaml")
    if len(counts) < 2:
        raise DataError(f"data.target: '{y.name}' has a single class ({contract.plain(counts.index[0])!r}); "
                        "a classifier needs at least two")
    small = counts[counts < 2]
    if not small.empty:
        raise DataError(f"data.target: class {contract.plain(small.index[0])!r} has {int(small.iloc[0])} row: too few to "
                        "put one in the training and one in the test split")


def split(config: Config, X: pd.DataFrame, y: pd.Series):
    stratify = y if config.task == "classification" else None
    try:
        return train_test_split(X, y, test_size=config.data.test_size, random_state=config.data.seed,
                                stratify=stratify)
    except ValueError as exc:  # e.g. fewer test rows than classes
        raise DataError(f"data.test_size: cannot split {len(y)} rows: {exc}") from None


def fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    """A content hash of the data, recorded with every registered model (lineage)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).values.tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=False).values.tobytes())
    return "sha256:" + digest.hexdigest()
