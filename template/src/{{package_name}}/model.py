"""The model: a scikit-learn pipeline (preprocessing + estimator), its metrics, and the bundle every
target serves.

The estimator is scikit-learn's, or XGBoost's / LightGBM's through their scikit-learn API
(`model.estimator: xgboost | lightgbm`, imported only when chosen), in the same preprocessing.

The bundle is a folder with `model.joblib` (a scikit-learn Pipeline: what the clouds' prebuilt
scikit-learn containers load) and `model.json` (task, input schema, classes, positive class, and the
framework the pipeline needs), so every server turns requests into the frame the pipeline was fitted on.
"""

from __future__ import annotations

import importlib
import json
import math
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
from sklearn import metrics as skm
from sklearn.base import BaseEstimator, ClassifierMixin, MetaEstimatorMixin, clone
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import LabelEncoder, OneHotEncoder, StandardScaler

from . import contract
from . import schema as schema_lib
from .config import Config
from .errors import ConfigError

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
# Other frameworks' scikit-learn API, by built-in name: (package, classifier, regressor). Imported only
# when configured, so a repository without the package installed never needs it.
_FRAMEWORK_ESTIMATORS = {
    "xgboost": ("xgboost", "XGBClassifier", "XGBRegressor"),
    "lightgbm": ("lightgbm", "LGBMClassifier", "LGBMRegressor"),
}
# What makes them deterministic and quiet (the generated tests fail on any warning), besides the seed
# (random_state = data.seed) and mlops.yaml's n_jobs (a fixed thread count): LightGBM prints
# "[LightGBM] [Warning] ..." lines unless verbose=-1, and gives the same model run to run only with
# deterministic=True and a fixed histogram layout. mlops.yaml's model.params win.
_FRAMEWORK_DEFAULTS = {
    "lightgbm": {"verbose": -1, "deterministic": True, "force_row_wise": True},
}
# Estimators that take NaN themselves; the others get imputation. Linear models also get scaling.
_TAKES_NAN = (HistGradientBoostingClassifier, HistGradientBoostingRegressor, RandomForestClassifier,
              RandomForestRegressor)
# Frameworks whose estimators take NaN themselves (their trees learn where missing values go).
_NAN_FRAMEWORKS = ("xgboost", "lightgbm")


def estimator_class(task: str, name: str) -> type:
    if name in _FRAMEWORK_ESTIMATORS:
        package, classifier, regressor = _FRAMEWORK_ESTIMATORS[name]
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise ConfigError(f"mlops.yaml: model.estimator: {name} needs the {package} package, which is not "
                              f"installed ({exc}); add it to the dependencies in pyproject.toml") from None
        return getattr(module, classifier if task == "classification" else regressor)
    return _ESTIMATORS[task][name]


def _framework_of_class(cls: type) -> str:
    """The top-level package an estimator class comes from: sklearn, xgboost, lightgbm, or another."""
    return cls.__module__.split(".", 1)[0]


class LabelEncodedClassifier(MetaEstimatorMixin, ClassifierMixin, BaseEstimator):
    """A classifier that only takes the labels 0..n-1 (XGBoost), fitted on encoded labels: `classes_`,
    `predict` and the columns of `predict_proba` are the training labels, as with any scikit-learn
    classifier, so evaluate, gate and every server read it the same way."""

    def __init__(self, estimator) -> None:
        self.estimator = estimator

    def fit(self, X, y, **fit_params):
        self.encoder_ = LabelEncoder().fit(y)
        self.classes_ = self.encoder_.classes_
        self.estimator_ = clone(self.estimator).fit(X, self.encoder_.transform(y), **fit_params)
        if hasattr(self.estimator_, "n_features_in_"):
            self.n_features_in_ = self.estimator_.n_features_in_
        return self

    def predict(self, X):
        return self.classes_[np.asarray(self.estimator_.predict(X)).astype(int)]

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)


def _needs_encoded_labels(estimator) -> bool:
    return _framework_of_class(type(estimator)) == "xgboost" and hasattr(estimator, "predict_proba")


def _estimator(config: Config):
    """The configured estimator: a built-in name, or `package.module:factory` of the user's."""
    name, params = config.model.estimator, dict(config.model.params)
    if ":" in name:
        module, _, attr = name.partition(":")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ConfigError(f"mlops.yaml: model.estimator: cannot import {name}: {exc}") from None
        made = factory(**params)
        if not hasattr(made, "fit"):
            raise ConfigError(f"mlops.yaml: model.estimator: {name} returned {type(made).__name__}, not an estimator")
        return made
    cls = estimator_class(config.task, name)
    if "random_state" in cls().get_params():
        params.setdefault("random_state", config.data.seed)
    if cls is LogisticRegression:
        params.setdefault("max_iter", 1000)
    for key, value in _FRAMEWORK_DEFAULTS.get(name, {}).items():
        params.setdefault(key, value)
    return cls(**params)


def build(config: Config, schema: list[dict]) -> Pipeline:
    """Preprocessing for the schema's columns, then the estimator; a user's Pipeline is used as it is."""
    estimator = _estimator(config)
    if isinstance(estimator, Pipeline):
        return estimator
    takes_nan = isinstance(estimator, _TAKES_NAN) or _framework_of_class(type(estimator)) in _NAN_FRAMEWORKS
    if config.task == "classification" and _needs_encoded_labels(estimator):
        estimator = LabelEncodedClassifier(estimator)
    # Columns by position, not name: the clouds' prebuilt containers (Vertex AI) predict on arrays.
    numeric = [i for i, c in enumerate(schema) if c["kind"] == schema_lib.NUMERIC]
    categorical = [i for i, c in enumerate(schema) if c["kind"] == schema_lib.CATEGORICAL]
    numeric_steps = ([] if takes_nan else [SimpleImputer(strategy="median")]) + (
        [StandardScaler()] if isinstance(estimator, (LogisticRegression, Ridge)) else [])
    parts = []
    if numeric:
        parts.append(("numeric", make_pipeline(*numeric_steps) if numeric_steps else "passthrough", numeric))
    if categorical:
        parts.append(("categorical", make_pipeline(
            SimpleImputer(strategy="constant", fill_value="(missing)"),
            OneHotEncoder(handle_unknown="ignore", sparse_output=False)), categorical))
    prep = ColumnTransformer(parts, remainder="drop")
    return Pipeline([("prep", prep), ("model", estimator)])


def framework_of(model) -> dict[str, str]:
    """The library a fitted model needs to load and predict, besides scikit-learn, and its version:
    {"framework": "sklearn" | "xgboost" | "lightgbm" | <another package>, "framework_version": ...}.
    Targets read it from model.json to know whether a prebuilt serving container can load the bundle."""
    final = model
    while True:
        if isinstance(final, Pipeline):
            final = final.steps[-1][1]
        elif isinstance(final, LabelEncodedClassifier):
            final = getattr(final, "estimator_", final.estimator)
        else:
            break
    framework = _framework_of_class(type(final))
    try:
        version = str(importlib.import_module(framework).__version__)
    except (ImportError, AttributeError):
        version = ""
    return {"framework": framework, "framework_version": version}


def positive_class(config: Config, y: pd.Series):
    """The class f1/precision/recall/roc_auc measure: gate.positive_class, else the minority class."""
    classes = list(pd.unique(y))
    wanted = config.gate.positive_class
    if wanted is None:
        counts = y.value_counts()
        return counts.index[-1] if len(counts) == 2 else None
    for c in classes:
        if schema_lib._category(c) == schema_lib._category(wanted):
            return c
    raise ConfigError(f"mlops.yaml: gate.positive_class: {wanted!r} is not a class of '{y.name}' "
                      f"(classes: {', '.join(map(str, classes))})")


def fit(config: Config, X: pd.DataFrame, y: pd.Series) -> tuple[Pipeline, dict]:
    """Fit the pipeline on (X, y); returns it with the bundle's metadata."""
    schema = schema_lib.infer(X)
    pipeline = build(config, schema)
    pipeline.fit(schema_lib.coerce(X, schema), y)
    meta = {"task": config.task, "features": [c["name"] for c in schema], "schema": schema,
            **framework_of(pipeline)}
    if config.task == "classification":
        meta["classes"] = [contract.plain(c) for c in pipeline.classes_]
        pos = positive_class(config, y)
        meta["positive_class"] = None if pos is None else contract.plain(pos)
    return pipeline, meta


def compute_metrics(pipeline, meta: dict, X: pd.DataFrame, y: pd.Series) -> dict[str, float]:
    """Metrics of the gate's vocabulary on (X, y); a metric that cannot be computed is NaN."""
    frame = schema_lib.coerce(X, meta["schema"]) if "schema" in meta else X
    return score(meta, y, pipeline.predict(frame),
                 pipeline.predict_proba(frame) if meta["task"] == "classification" else None,
                 list(getattr(pipeline, "classes_", [])))


def score(meta: dict, y, predicted, proba, classes: list) -> dict[str, float]:
    if meta["task"] == "regression":
        return {"r2": _safe(skm.r2_score, y, predicted) if len(y) > 1 else math.nan,
                "rmse": _safe(lambda a, b: float(np.sqrt(skm.mean_squared_error(a, b))), y, predicted),
                "mae": _safe(skm.mean_absolute_error, y, predicted)}
    pos = meta.get("positive_class")
    binary = pos is not None
    average = {"average": "binary", "pos_label": pos} if binary else {"average": "macro"}
    result = {
        "accuracy": _safe(skm.accuracy_score, y, predicted),
        "f1": _safe(lambda a, b: skm.f1_score(a, b, zero_division=0, **average), y, predicted),
        "precision": _safe(lambda a, b: skm.precision_score(a, b, zero_division=0, **average), y, predicted),
        "recall": _safe(lambda a, b: skm.recall_score(a, b, zero_division=0, **average), y, predicted),
    }
    if binary:
        column = [str(c) for c in classes].index(str(pos))
        result["roc_auc"] = _safe(skm.roc_auc_score, (np.asarray(y) == pos).astype(int), proba[:, column])
    else:
        result["roc_auc"] = _safe(lambda a, b: skm.roc_auc_score(a, b, multi_class="ovr", labels=classes),
                                  y, proba)
    return result


def _safe(metric, *args) -> float:
    """NaN when the metric is undefined on this data (one class in the test set, ...): the gate fails it."""
    try:
        value = float(metric(*args))
    except ValueError:
        return math.nan
    return value


def baseline_metrics(config: Config, meta: dict, X_train, y_train, X_test, y_test) -> dict[str, float]:
    """The trivial model (most frequent class / the mean) scored on the same test set."""
    dummy = DummyClassifier(strategy="prior") if config.task == "classification" else DummyRegressor()
    dummy.fit(np.zeros((len(y_train), 1)), y_train)
    zeros = np.zeros((len(y_test), 1))
    proba = dummy.predict_proba(zeros) if config.task == "classification" else None
    return score(meta, y_test, dummy.predict(zeros), proba, list(getattr(dummy, "classes_", [])))


def averaging(meta: dict) -> str:
    if meta["task"] == "regression":
        return "none"
    if meta.get("positive_class") is not None:
        return f"binary: f1, precision, recall and roc_auc measure class {meta['positive_class']!r}"
    return "macro over classes (roc_auc: one-vs-rest)"


def save(pipeline: Pipeline, meta: dict, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(pipeline, folder / "model.joblib")
    (folder / "model.json").write_text(json.dumps(meta, indent=2))


def load(folder: Path) -> tuple[Pipeline, dict]:
    return joblib.load(folder / "model.joblib"), json.loads((folder / "model.json").read_text())
