"""The model: a scikit-learn pipeline, its metrics, and the artifact bundle every target serves.

The bundle is a folder with `model.joblib` (what the clouds' prebuilt scikit-learn containers
load) and `model.json` (feature names and task, so predict() accepts rows by name or by position).
"""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from .config import TASK, Config

_ESTIMATORS = {
    "classification": {
        "random_forest": RandomForestClassifier,
        "gradient_boosting": HistGradientBoostingClassifier,
        "linear": LogisticRegression,
    },
    "regression": {
        "random_forest": RandomForestRegressor,
        "gradient_boosting": HistGradientBoostingRegressor,
        "linear": Ridge,
    },
}


def estimator_class(name: str) -> type:
    return _ESTIMATORS[TASK][name]


def build(config: Config) -> Pipeline:
    cls = estimator_class(config.model.estimator)
    params = dict(config.model.params)
    if "random_state" in cls().get_params():
        params.setdefault("random_state", config.data.seed)
    if cls is LogisticRegression:
        params.setdefault("max_iter", 1000)
    return Pipeline([("scale", StandardScaler()), ("model", cls(**params))])


def compute_metrics(pipeline: Pipeline, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    predicted = pipeline.predict(X)
    if TASK == "regression":
        return {
            "r2": float(skm.r2_score(y, predicted)),
            "rmse": float(np.sqrt(skm.mean_squared_error(y, predicted))),
            "mae": float(skm.mean_absolute_error(y, predicted)),
        }
    binary = len(np.unique(y)) == 2
    average = "binary" if binary else "macro"
    proba = pipeline.predict_proba(X)
    return {
        "accuracy": float(skm.accuracy_score(y, predicted)),
        "f1": float(skm.f1_score(y, predicted, average=average)),
        "precision": float(skm.precision_score(y, predicted, average=average, zero_division=0)),
        "recall": float(skm.recall_score(y, predicted, average=average)),
        "roc_auc": float(
            skm.roc_auc_score(y, proba[:, 1]) if binary else skm.roc_auc_score(y, proba, multi_class="ovr")
        ),
    }


def save(pipeline: Pipeline, features: list[str], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    meta = {"task": TASK, "features": features}
    if TASK == "classification":
        meta["classes"] = [c.item() if hasattr(c, "item") else c for c in pipeline.classes_]
    (folder / "model.json").write_text(json.dumps(meta, indent=2))


def load(folder: Path) -> tuple[Pipeline, dict]:
    return joblib.load(folder / "model.joblib"), json.loads((folder / "model.json").read_text())
