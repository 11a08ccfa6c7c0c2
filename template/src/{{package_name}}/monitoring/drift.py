"""Population stability index (PSI): how far a feature's distribution in traffic moved from training.

PSI = sum over bins of (current - expected) * ln(current / expected). Bins are the training data's
deciles for numbers (edges saved in the baseline, so every monitor run bins the same way) and its
categories for categorical columns; missing values are a bin of their own, so a column that starts
arriving empty drifts too. PSI is the industry's usual drift score (below 0.1 stable, 0.1-0.2 some
shift, above 0.2 a shift to act on) and needs nothing but NumPy, so `monitor` reads a million rows in
seconds; Evidently would add a large dependency tree for the same number.
"""

from __future__ import annotations

import math

import numpy as np

BINS = 10
FLOOR = 1e-4            # an empty bin on one side would make the logarithm infinite
OTHER = "__other__"     # categories never seen in training
MISSING = "__missing__"


def numeric_edges(values: np.ndarray) -> list[float]:
    """Interior bin edges: the deciles of the training values (fewer when values repeat)."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    quantiles = np.quantile(finite, np.linspace(0, 1, BINS + 1)[1:-1])
    return [float(q) for q in np.unique(quantiles)]


def numeric_shares(values: np.ndarray, edges: list[float]) -> list[float]:
    """Shares of len(edges) + 1 bins, then the share missing (NaN) as the last entry."""
    values = np.asarray(values, dtype="float64")
    missing = np.isnan(values)
    bins = np.searchsorted(np.asarray(edges, dtype="float64"), values[~missing], side="right")
    counts = np.bincount(bins, minlength=len(edges) + 1).astype("float64")
    total = max(values.size, 1)
    return [*(counts / total).tolist(), float(missing.sum()) / total]


def categorical_shares(values, known: list[str]) -> dict[str, float]:
    """Shares of each known category, of the others together, and of missing values."""
    import pandas as pd

    series = pd.Series(values, dtype=object)
    total = max(len(series), 1)
    missing = series.isna()
    text = series[~missing].astype(str)
    counts = text.value_counts()
    shares = {c: float(counts.get(c, 0)) / total for c in known}
    shares[OTHER] = float(counts[~counts.index.isin(known)].sum()) / total
    shares[MISSING] = float(missing.sum()) / total
    return shares


def psi(expected: list[float], actual: list[float]) -> float:
    e = np.maximum(np.asarray(expected, dtype="float64"), FLOOR)
    a = np.maximum(np.asarray(actual, dtype="float64"), FLOOR)
    value = float(np.sum((a - e) * np.log(a / e)))
    return value if math.isfinite(value) else math.inf
