"""The verdict of one monitor run: each feature's and the predictions' PSI against the baseline of
the version serving, the live gate metric where labels arrived, and whether any crossed its bound."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..config import Config
from ..errors import ConfigError
from ..targets.base import MonitorResult
from . import baseline as baseline_lib
from . import drift
from .traffic import Traffic


def _score(expected: dict, values: pd.Series) -> tuple[float, dict]:
    """PSI of `values` against one baseline column, and the traffic's shares (for the report)."""
    if expected["kind"] == "numeric":
        shares = drift.numeric_shares(pd.to_numeric(values, errors="coerce").to_numpy(dtype="float64"),
                                      expected["edges"])
        return drift.psi(expected["shares"], shares), {"shares": shares}
    known = [c for c in expected["shares"] if c not in (drift.OTHER, drift.MISSING)]
    shares = drift.categorical_shares(values.astype(object).where(values.notna(), None).map(
        lambda v: v if v is None else str(v)), known)
    return drift.psi(list(expected["shares"].values()), [shares[k] for k in expected["shares"]]), {"shares": shares}


def compare(config: Config, env: str, version: str | None, base: dict, traffic: Traffic, meta: dict,
            model_dir: Path | None = None) -> MonitorResult:
    rows = len(traffic.features)
    result = MonitorResult(env=env, status="ok", version=version, rows=rows, window=traffic.window,
                           source="captured traffic")
    cfg = config.monitoring
    if rows < cfg.min_rows:
        result.status = "too_little_traffic"
        result.notes.append(f"{rows} rows in the window ({traffic.window}); monitoring.min_rows is {cfg.min_rows}: "
                            "too little traffic to tell drift from chance, nothing judged")
        return result
    for column in meta["schema"]:
        name = column["name"]
        expected = base["features"].get(name)
        if expected is None:
            result.notes.append(f"feature {name!r} has no baseline (model trained before capture existed?)")
            continue
        score, shares = _score(expected, traffic.features[name])
        drifted = score > cfg.drift_threshold
        result.features[name] = {"psi": round(score, 4), "threshold": cfg.drift_threshold, "drifted": drifted,
                                 "kind": expected["kind"], "baseline": expected, "current": shares}
        if drifted:
            result.drifted.append(f"{name}: PSI {score:.2f} > {cfg.drift_threshold:g}")
    if traffic.predictions is not None and "prediction" in base:
        score, shares = _score(base["prediction"], traffic.predictions)
        drifted = score > cfg.prediction_drift_threshold
        result.prediction = {"psi": round(score, 4), "threshold": cfg.prediction_drift_threshold,
                             "drifted": drifted, "baseline": base["prediction"], "current": shares}
        if drifted:
            result.drifted.append(f"predictions: PSI {score:.2f} > {cfg.prediction_drift_threshold:g}")
    if cfg.ground_truth and model_dir is not None and traffic.keys is not None:
        result.quality = live_quality(config, traffic, model_dir)
    if result.drifted:
        result.status = "drift"
    elif result.quality and result.quality.get("passed") is False:
        result.status = "quality"
    return result


def read_labels(config: Config) -> pd.DataFrame:
    """monitoring.ground_truth: request_id, row (default 0) and the label column (data.target)."""
    location, label = config.monitoring.ground_truth, config.data.target
    try:
        if location.lower().endswith((".parquet", ".pq")):
            frame = pd.read_parquet(location if "://" in location else config.root / location)
        else:
            frame = pd.read_csv(location if "://" in location else config.root / location, sep=config.data.sep)
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"mlops.yaml: monitoring.ground_truth: cannot read {location} ({exc})") from None
    missing = [c for c in ("request_id", label) if c not in frame.columns]
    if missing:
        raise ConfigError(f"mlops.yaml: monitoring.ground_truth: {location} has no column {', '.join(missing)} "
                          "(expected request_id, row and the label column named by data.target)")
    if "row" not in frame.columns:
        frame["row"] = 0
    return frame[["request_id", "row", label]].astype({"request_id": str, "row": "int64"})


def live_quality(config: Config, traffic: Traffic, model_dir: Path) -> dict:
    """The gate metric of the serving version on the captured rows whose labels arrived."""
    from .. import model as model_lib

    labels = read_labels(config)
    keyed = traffic.keys.reset_index(drop=True).assign(_i=range(len(traffic.keys)))
    joined = keyed.merge(labels, on=["request_id", "row"], how="inner")
    metric = config.gate.metric
    threshold = config.monitoring.quality_threshold
    threshold = config.gate.threshold if threshold is None else threshold
    quality = {"metric": metric, "threshold": threshold, "rows": len(joined)}
    if len(joined) < config.data.min_test_rows:
        quality.update(passed=None, note=f"{len(joined)} labelled rows (< data.min_test_rows "
                                         f"{config.data.min_test_rows}): live {metric} not judged")
        return quality
    pipeline, meta = model_lib.load(model_dir)
    X = traffic.features.iloc[joined["_i"].to_numpy()].reset_index(drop=True)
    y = joined[config.data.target]
    if meta.get("classes") and isinstance(meta["classes"][0], (int, float)) and not isinstance(y.iloc[0], bool):
        y = pd.to_numeric(y, errors="coerce")
    value = model_lib.compute_metrics(pipeline, meta, X, y).get(metric, math.nan)
    lower = config.gate.lower_is_better
    passed = math.isfinite(value) and (value <= threshold if lower else value >= threshold)
    quality.update(value=round(value, 4) if math.isfinite(value) else None, passed=passed)
    return quality


def load_baseline(model_dir: Path) -> dict:
    base = baseline_lib.read(model_dir)
    if base is None:
        raise ConfigError(f"{model_dir}: no baseline.json: this version was trained before monitoring existed; "
                          "retrain it (train writes the baseline) to monitor it")
    return base
