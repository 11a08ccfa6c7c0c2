"""Loading and splitting the training data. Knows nothing about clouds."""

from __future__ import annotations

import hashlib

import pandas as pd
from sklearn import datasets
from sklearn.model_selection import train_test_split

from .config import TASK, Config
from .errors import ConfigError

# Datasets that ship inside scikit-learn, so training runs offline.
SKLEARN_DATASETS = {
    "classification": {
        "breast_cancer": datasets.load_breast_cancer,
        "iris": datasets.load_iris,
        "wine": datasets.load_wine,
        "digits": datasets.load_digits,
    },
    "regression": {"diabetes": datasets.load_diabetes},
}


def load_frame(config: Config) -> tuple[pd.DataFrame, pd.Series]:
    """Features and label of the configured source."""
    source = config.data.source
    if source.startswith("sklearn:"):
        bunch = SKLEARN_DATASETS[TASK][source.removeprefix("sklearn:")](as_frame=True)
        return bunch.data, bunch.target.rename("target")
    location = source if "://" in source else str(config.root / source)
    try:
        if location.lower().endswith((".parquet", ".pq")):
            frame = pd.read_parquet(location)
        else:
            frame = pd.read_csv(location)
    except ImportError as exc:  # e.g. s3fs / gcsfs / adlfs missing for a remote URI
        raise ConfigError(f"mlops.yaml: data.source: cannot read {source}: {exc}") from None
    target = config.data.target
    if target not in frame.columns:
        raise ConfigError(
            f"mlops.yaml: data.target: column '{target}' not in {source} (columns: {', '.join(frame.columns)})"
        )
    features = frame.drop(columns=[target]).select_dtypes("number")
    if features.empty:
        raise ConfigError(f"mlops.yaml: data.source: {source} has no numeric feature columns")
    return features, frame[target]


def split(config: Config, X: pd.DataFrame, y: pd.Series):
    stratify = y if TASK == "classification" else None
    return train_test_split(
        X, y, test_size=config.data.test_size, random_state=config.data.seed, stratify=stratify
    )


def fingerprint(X: pd.DataFrame, y: pd.Series) -> str:
    """A content hash of the data, recorded with every registered model (lineage)."""
    digest = hashlib.sha256()
    digest.update(",".join(map(str, X.columns)).encode())
    digest.update(pd.util.hash_pandas_object(X, index=False).values.tobytes())
    digest.update(pd.util.hash_pandas_object(y, index=False).values.tobytes())
    return "sha256:" + digest.hexdigest()
