"""The model's input schema: which columns it takes, of which kind, which may be missing.

Inferred from the training data, saved with the model (model.json), and used on both sides of the
model: `coerce` turns training frames and serving requests into the same frame, so what the model
is fitted on is what it is asked; `differences` is the serving contract checked at deploy.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pandas as pd

NUMERIC, CATEGORICAL = "numeric", "categorical"
MAX_CATEGORIES = 50          # a string column with more distinct values is free text, not a category
_PLAIN = (str, float, int, bool)  # equal values of one of these types are typed alike (not so Decimal)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?")


class SchemaError(ValueError):
    """A value or row that does not fit the schema; the message names the row and column."""


def column_problem(series: pd.Series) -> str | None:
    """Why a column cannot be a feature, or None when it can."""
    values = series.dropna()
    if values.empty:
        return "is empty (no value in any row)"
    textual = values.dtype == object or pd.api.types.is_string_dtype(values)
    if pd.api.types.is_datetime64_any_dtype(series) or (
            textual and values.astype(str).str.match(_DATE).mean() > 0.9):
        return "holds dates: expand them into numeric columns (year, month, day of week) first"
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return None
    if isinstance(series.dtype, pd.CategoricalDtype) or values.map(type).isin([str, bool]).all():
        distinct = values.astype(str).nunique()
        if distinct > MAX_CATEGORIES and distinct > 0.5 * len(values):
            return f"looks like free text ({distinct} distinct values): not a category the model can use"
        return None
    return f"has values of a type the model cannot take ({values.map(lambda v: type(v).__name__).iloc[0]})"


def looks_like_identifier(series: pd.Series) -> bool:
    """Unique in every row (strings or integers), or integers counting up: a row id, not a feature."""
    values = series.dropna()
    if len(values) < 10 or len(values) != len(series):
        return False
    if pd.api.types.is_integer_dtype(series):
        return values.is_unique and (values.is_monotonic_increasing or values.is_monotonic_decreasing
                                     or values.nunique() == len(values))
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        return values.astype(str).is_unique
    return False


def infer(frame: pd.DataFrame) -> list[dict]:
    """[{name, kind, nullable, categories?}] for the columns of `frame` (all usable)."""
    columns = []
    for name in frame.columns:
        series = frame[name]
        numeric = pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)
        column: dict[str, Any] = {"name": str(name), "kind": NUMERIC if numeric else CATEGORICAL,
                                  "nullable": bool(series.isna().any())}
        if not numeric:
            column["categories"] = sorted(series.dropna().map(_category).unique().tolist())
        columns.append(column)
    return columns


def _category(value: Any) -> str:
    """Categories are compared as text: JSON true, CSV True and pandas' True are one category."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower() if str(value).strip().lower() in ("true", "false") else str(value)


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool):
        raise SchemaError(f"{where}: expected a number, got {str(value).lower()}")
    if isinstance(value, (int, float)):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**1023 else math.inf
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise SchemaError(f"{where}: expected a number, got {value[:40]!r}") from None
    else:
        raise SchemaError(f"{where}: expected a number, got {type(value).__name__}")
    if math.isinf(number):
        raise SchemaError(f"{where}: {value!r} is not a finite number")
    return number


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and value.strip().lower() in ("", "nan", "null", "na"))


def _value(value: Any, column: dict, where: str) -> Any:
    if _missing(value):
        if not column["nullable"]:
            raise SchemaError(f"{where}: a value is required (the model was trained without missing values)")
        return math.nan if column["kind"] == NUMERIC else None
    if column["kind"] == NUMERIC:
        return _number(value, where)
    if isinstance(value, (dict, list)):
        raise SchemaError(f"{where}: expected a category, got {type(value).__name__}")
    return _category(value)


def frame(rows: list[list], schema: list[dict]) -> pd.DataFrame:
    """Checked rows (from check_rows) -> the frame the pipeline expects: one build for many requests."""
    return _frame_of(list(zip(*rows, strict=True)) if rows else [() for _ in schema], schema)


def _frame_of(columns: list, schema: list[dict]) -> pd.DataFrame:
    """Typed columns in the schema's order -> the frame: numbers float64, categories object."""
    return pd.DataFrame({c["name"]: pd.Series(values, dtype="float64" if c["kind"] == NUMERIC else object)
                         for c, values in zip(schema, columns, strict=True)})


def coerce(data: pd.DataFrame, schema: list[dict], offset: int = 0) -> pd.DataFrame:
    """`data` with the schema's columns in order: numbers as floats, categories as text, missing as
    NaN/None where the schema allows it. Raises SchemaError naming the first bad row and column.

    Column by column (training and batch frames are large): a column of numbers in a numeric dtype is
    converted at once; any other column cell by cell, each distinct value once. The first bad cell in
    row order is then run through the per-cell check again, which raises its error."""
    for column in schema:
        if column["name"] not in data.columns:
            raise SchemaError(f"column {column['name']!r} is missing")
    columns, first_bad = [], None
    for position, column in enumerate(schema):
        series = data[column["name"]]
        values, bad = _numbers(series, column) if _numeric_dtype(series, column) else _cells(series, column)
        if bad is not None and (first_bad is None or (bad, position) < first_bad):
            first_bad = (bad, position)
        columns.append(values)
    if first_bad is not None:
        row, position = first_bad
        column = schema[position]
        _value(_objects(data[column["name"]].iloc[[row]])[0], column, _where(row + offset, column))
    return _frame_of(columns, schema)


def _numeric_dtype(series: pd.Series, column: dict) -> bool:
    return column["kind"] == NUMERIC and (pd.api.types.is_integer_dtype(series) or pd.api.types.is_float_dtype(series))


def _numbers(series: pd.Series, column: dict) -> tuple[np.ndarray, int | None]:
    """A numeric-dtype column as floats, and the first row `_value` would refuse (missing where not
    nullable, or infinite), if any."""
    values = series.to_numpy(dtype="float64", na_value=np.nan, copy=True)
    bad = np.isinf(values) if column["nullable"] else ~np.isfinite(values)
    return values, (int(bad.argmax()) if bad.any() else None)


def _cells(series: pd.Series, column: dict) -> tuple[list, int | None]:
    """Any other column through `_value`, a repeated plain value once; stops at the first bad row."""
    typed, out = {}, []
    for row, value in enumerate(_objects(series)):
        plain = value.__class__ in _PLAIN
        if plain and (value.__class__, value) in typed:
            out.append(typed[value.__class__, value])
            continue
        try:
            result = _value(value, column, "")
        except SchemaError:
            return out, row
        if plain:
            typed[value.__class__, value] = result
        out.append(result)
    return out, None


def _objects(series: pd.Series) -> list:
    """The column's values as the Python objects a client would send (bool, not numpy.bool_)."""
    return series.astype(object).tolist()


def _where(row: int, column: dict) -> str:
    return f"row {row}, column {column['name']!r}"


def _typed(rows: list[list], schema: list[dict], offset: int = 0) -> list[list]:
    typed = []
    for i, row in enumerate(rows):
        try:
            typed.append([_value(v, c, "") for v, c in zip(row, schema, strict=True)])
        except SchemaError:  # again, naming the cell: the message is built only for a bad row
            for v, c in zip(row, schema, strict=True):
                _value(v, c, _where(i + offset, c))  # raises at the same cell
            raise
    return typed


def check_rows(rows: Any, schema: list[dict]) -> list[list]:
    """Request rows (lists by position, or objects by name) -> typed rows; SchemaError names the first
    bad row and column. Plain Python: cheap per request; `frame` builds the DataFrame once per batch."""
    if not isinstance(rows, list) or not rows:
        raise SchemaError("'instances' must be a non-empty list of rows")
    names = [c["name"] for c in schema]
    records = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            missing = [n for n in names if n not in row]
            extra = [k for k in row if k not in names]
            if missing or extra:
                parts = ([f"missing columns {missing[:5]}"] if missing else []) + (
                    [f"unknown columns {extra[:5]}"] if extra else [])
                raise SchemaError(f"row {index}: " + ", ".join(parts))
            records.append([row[n] for n in names])
        elif isinstance(row, list):
            if len(row) != len(names):
                raise SchemaError(f"row {index}: expected {len(names)} values ({', '.join(names[:5])}...), "
                                  f"got {len(row)}")
            records.append(row)
        else:
            raise SchemaError(f"row {index}: expected a list of values or an object of columns")
    return _typed(records, schema)


def rows_to_frame(rows: Any, schema: list[dict]) -> pd.DataFrame:
    """Request rows -> the coerced frame (check_rows, then frame)."""
    return frame(check_rows(rows, schema), schema)
