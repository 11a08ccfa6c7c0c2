"""The training data's statistics, saved with every model version (model bundle: baseline.json and
baseline.csv), so a monitor compares traffic with the data of the version that serves it.

baseline.json: per feature its bins (numbers: decile edges and shares; categories: shares) and
summary numbers; the predictions' distribution on the training data; for classification the class
balance of the labels. baseline.csv: a sample of the training rows, for the clouds' own monitors
(SageMaker Model Monitor, Azure ML, Vertex AI), which compute their statistics from data.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from . import drift

CSV_ROWS = 10_000


def describe(values: pd.Series, kind: str, known: list[str] | None = None) -> dict:
    """The bins and summary of one column (the same function builds the baseline and the traffic's)."""
    if kind == "numeric":
        numbers = pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64")
        edges = drift.numeric_edges(numbers)
        finite = numbers[np.isfinite(numbers)]
        summary = ({"mean": float(finite.mean()), "std": float(finite.std()), "min": float(finite.min()),
                    "max": float(finite.max())} if finite.size else {})
        return {"kind": "numeric", "edges": edges, "shares": drift.numeric_shares(numbers, edges), **summary}
    categories = known if known is not None else sorted(values.dropna().astype(str).unique().tolist())
    return {"kind": "categorical", "shares": drift.categorical_shares(values, categories)}


def compute(X: pd.DataFrame, schema: list[dict], predictions, task: str, y=None) -> dict:
    features = {c["name"]: describe(X[c["name"]], c["kind"], c.get("categories")) for c in schema}
    result = {"format": 1, "rows": len(X), "features": features,
              "prediction": describe(pd.Series(predictions), "numeric" if task == "regression" else "categorical")}
    if task == "classification" and y is not None:
        result["label"] = describe(pd.Series(y), "categorical")
    return result


def write(folder: Path, X: pd.DataFrame, schema: list[dict], predictions, task: str, y=None,
          seed: int = 0) -> dict:
    baseline = compute(X, schema, predictions, task, y)
    (folder / "baseline.json").write_text(json.dumps(baseline, indent=2))
    sample = X if len(X) <= CSV_ROWS else X.sample(CSV_ROWS, random_state=seed)
    sample[[c["name"] for c in schema]].to_csv(folder / "baseline.csv", index=False)
    return baseline


def read(folder: Path) -> dict | None:
    try:
        return json.loads((folder / "baseline.json").read_text())
    except FileNotFoundError:
        return None
