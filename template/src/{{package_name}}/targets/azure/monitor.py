"""Azure ML model monitoring of one environment (SDK v2 entities), and the reading of its verdict.

What `deploy` sets up (AzureTarget.setup_monitoring), all built here without a workspace:
- capture: the deployment's `data_collector` (collections model_inputs and model_outputs, sampled at
  monitoring.capture_percent) and the scoring script's azureml-ai-monitoring Collector: Azure ML
  collects nothing from a custom scoring script by itself.
- reference data: the serving version's baseline.csv (a sample of its training rows, the columns the
  scoring script collects) with the model's predictions on those rows, registered as the MLTable data
  asset `<model>-baseline`, version = model version. The training data itself is not used: it may not
  be in Azure at all (sklearn:, a local path), holds the label rather than predictions, and is not tied
  to the version that serves.
- a monitor schedule `<model>_<env>_monitor` on the live deployment: data drift of every feature and
  prediction drift, both by population stability index (PSI) against monitoring.drift_threshold /
  prediction_drift_threshold, e-mailing alerts.email. It runs every day (or every
  ceil(window.hours / 24) days); its production window is the time since the previous run.

What `monitor --target azure` reads (AzureTarget.latest_monitor_result): the newest finished run of
that schedule, whose steps write one `signals/<signal>.json` per signal to their `signal_output`
(Azure ML's model-monitoring components: metrics.features.<name>.metrics[] with metricName,
metricValue and threshold, and metrics.rowCount.targetCount).
"""

from __future__ import annotations

import copy
import functools
import json
import math
import re
from pathlib import Path

import pandas as pd
from azure.ai.ml import Input
from azure.ai.ml.constants import AssetTypes, MonitorDatasetContext
from azure.ai.ml.entities import (
    AlertNotification,
    CategoricalDriftMetrics,
    Data,
    DataCollector,
    DataDriftMetricThreshold,
    DataDriftSignal,
    DeploymentCollection,
    MonitorDefinition,
    MonitoringTarget,
    MonitorSchedule,
    NumericalDriftMetrics,
    PredictionDriftMetricThreshold,
    PredictionDriftSignal,
    RecurrencePattern,
    RecurrenceTrigger,
    ReferenceData,
    ServerlessSparkCompute,
)

from ...config import Config
from ..base import MonitorResult

COLLECTIONS = ("model_inputs", "model_outputs")  # the Collector names score.py logs; the monitor finds them
PREDICTION = "model_prediction"                   # the column score.py logs to model_outputs
SPARK = {"instance_type": "standard_e4s_v3", "runtime_version": "3.4"}  # serverless Spark of the monitor runs
RUN_AT = {"hours": 1, "minutes": 0}               # UTC, before the weekly retrain of mlops.yaml's default
FINISHED = ("Completed", "Failed")                # a run that found drift ends Failed


# -- capture ----------------------------------------------------------------------------------------
def data_collector(config: Config, env: str) -> DataCollector | None:
    """The deployment's collection of what it was asked and answered; None when capture is off."""
    percent = config.capture_percent(env)
    return copy.deepcopy(_data_collector(percent)) if percent else None


@functools.lru_cache(maxsize=8)
def _data_collector(percent: float) -> DataCollector:
    # built once per percent and copied: azure-ai-ml's experimental classes call inspect.stack() (reading the
    # source line of every frame) on each construction, ~50 ms under a deep stack
    return DataCollector(collections={name: DeploymentCollection(enabled="true") for name in COLLECTIONS},
                         sampling_rate=percent / 100)


# -- names ------------------------------------------------------------------------------------------
def schedule_name(config: Config, env: str) -> str:
    return re.sub(r"\W", "_", f"{config.model.name}_{env}") + "_monitor"


def signal_names(config: Config, env: str) -> dict[str, str]:
    """Signals are named `<monitor>_<signal>`: the form an Event Grid filter on a monitor's breaches needs."""
    name = schedule_name(config, env)
    return {"data": f"{name}_data_drift", "prediction": f"{name}_prediction_drift"}


def baseline_asset_name(config: Config) -> str:
    return f"{config.model.name}-baseline"


# -- reference data ---------------------------------------------------------------------------------
MLTABLE = """\
# The training rows of model version {version} and its predictions on them: the monitor's reference.
paths:
  - file: ./baseline.csv
transformations:
  - read_delimited:
      delimiter: ","
      header: all_files_same_headers
      encoding: utf8
"""


def write_reference(dest: Path, baseline_dir: Path, version: str) -> Path:
    """An MLTable folder: baseline.csv plus the bundle's predictions on it (the prediction drift reference)."""
    from ... import model as model_lib
    from ... import serving

    pipeline, meta = model_lib.load(baseline_dir)
    rows = pd.read_csv(baseline_dir / "baseline.csv")
    rows[PREDICTION] = serving.predict(pipeline, meta, rows.to_dict(orient="records"))
    dest.mkdir(parents=True, exist_ok=True)
    rows.to_csv(dest / "baseline.csv", index=False)
    (dest / "MLTable").write_text(MLTABLE.format(version=version))
    return dest


def reference_asset(config: Config, version: str, folder: Path) -> Data:
    return Data(name=baseline_asset_name(config), version=str(version), type=AssetTypes.MLTABLE, path=str(folder),
                description=f"Training rows and predictions of {config.model.name} version {version}: "
                            "the reference of its Azure ML monitor")


# -- the monitor schedule ---------------------------------------------------------------------------
def _psi(threshold: float, task_kind: str):
    """PSI thresholds: Azure ML computes PSI for numerical and categorical columns alike."""
    if task_kind == "numerical":
        return NumericalDriftMetrics(population_stability_index=threshold)
    return CategoricalDriftMetrics(population_stability_index=threshold)


def recurrence(config: Config) -> RecurrenceTrigger:
    hours = config.monitoring.window.hours
    days = max(1, math.ceil(hours / 24)) if hours else 1
    return RecurrenceTrigger(frequency="day", interval=days, schedule=RecurrencePattern(**RUN_AT))


def schedule(config: Config, env: str, deployment: str, version: str, reference_uri: str,
             features: list[str]) -> MonitorSchedule:
    """The monitor of `env`'s live deployment against version `version`'s reference data."""
    monitoring, emails = config.monitoring, [config.alerts.email] if config.alerts.email else []
    reference = ReferenceData(input_data=Input(type=AssetTypes.MLTABLE, path=reference_uri),
                              data_context=MonitorDatasetContext.TRAINING,
                              data_column_names={"target_column": PREDICTION})
    names = signal_names(config, env)
    drift = DataDriftSignal(
        reference_data=reference, features=list(features),
        metric_thresholds=DataDriftMetricThreshold(
            numerical=_psi(monitoring.drift_threshold, "numerical"),
            categorical=_psi(monitoring.drift_threshold, "categorical")),
        alert_enabled=True)  # a breach tags the run (what Event Grid routes); e-mail only to alerts.email
    prediction_kind = "numerical" if config.task == "regression" else "categorical"
    prediction = PredictionDriftSignal(
        reference_data=reference,
        metric_thresholds=PredictionDriftMetricThreshold(
            **{prediction_kind: _psi(monitoring.prediction_drift_threshold, prediction_kind)}),
        alert_enabled=True)  # a breach tags the run (what Event Grid routes); e-mail only to alerts.email
    endpoint = config.azure.deployments[env].endpoint
    definition = MonitorDefinition(
        compute=ServerlessSparkCompute(**SPARK),
        monitoring_target=MonitoringTarget(ml_task=config.task, endpoint_deployment_id=f"azureml:{endpoint}:{deployment}"),
        monitoring_signals={names["data"]: drift, names["prediction"]: prediction},
        alert_notification=AlertNotification(emails=emails) if emails else None,
    )
    return MonitorSchedule(
        name=schedule_name(config, env), trigger=recurrence(config), create_monitor=definition,
        display_name=f"{config.model.name} {env}: drift against version {version}",
        tags={"model_version": str(version), "env": env, "endpoint": endpoint, "deployment": deployment},
    )


# -- its verdict ------------------------------------------------------------------------------------
def _is_psi(metric: dict) -> bool:
    return re.sub(r"[\W_]", "", str(metric.get("metricName", ""))).lower() == "populationstabilityindex"


def _psi_of(entry: dict) -> dict | None:
    """The PSI metric of one feature's signal output (the first thresholded metric if PSI is missing)."""
    metrics = [m for m in entry.get("metrics", []) if isinstance(m, dict) and "metricValue" in m]
    psi = [m for m in metrics if _is_psi(m)]
    chosen = psi or [m for m in metrics if m.get("threshold") is not None]
    return chosen[0] if chosen else None


def _scores(signal: dict, default_threshold: float) -> tuple[dict[str, dict], int | None]:
    """name -> {psi, threshold, drifted} of one signal output, and its production row count."""
    metrics = signal.get("metrics") or {}
    scores = {}
    for name, entry in (metrics.get("features") or {}).items():
        metric = _psi_of(entry) if isinstance(entry, dict) else None
        if metric is None:
            continue
        score = float(metric["metricValue"])
        threshold = float(metric.get("threshold") if metric.get("threshold") is not None else default_threshold)
        scores[name] = {"psi": round(score, 4), "threshold": threshold, "drifted": score > threshold}
        if not _is_psi(metric):
            scores[name]["metric"] = metric.get("metricName", "")  # the service computed another metric
    rows = (metrics.get("rowCount") or {}).get("targetCount")
    return scores, int(rows) if rows is not None else None


def verdict(config: Config, env: str, version: str | None, signals: dict[str, dict], run_name: str,
            run_status: str, run_url: str = "") -> MonitorResult:
    """The MonitorResult of one monitor run from its signal outputs (signal name -> signals/<name>.json)."""
    names, monitoring = signal_names(config, env), config.monitoring
    result = MonitorResult(env=env, status="ok", version=version, window=f"monitor run {run_name}",
                           source=f"azure ml monitor {schedule_name(config, env)}, run {run_name} ({run_status})",
                           report_url=run_url)
    if names["data"] not in signals and names["prediction"] not in signals:
        result.status = "no_result"
        result.notes.append(f"run {run_name} ({run_status}) wrote no signal output: see {run_url or 'the studio'}")
        return result
    features, data_rows = _scores(signals.get(names["data"], {}), monitoring.drift_threshold)
    predicted, prediction_rows = _scores(signals.get(names["prediction"], {}), monitoring.prediction_drift_threshold)
    result.features = features
    if predicted:
        result.prediction = next(iter(predicted.values()))
    result.rows = max((r for r in (data_rows, prediction_rows) if r is not None), default=0)
    if result.rows < monitoring.min_rows:
        result.status = "too_little_traffic"
        result.notes.append(f"{result.rows} rows in the window, fewer than monitoring.min_rows={monitoring.min_rows}")
        return result
    result.drifted = [f"{name}: PSI {s['psi']:.3g} > {s['threshold']:g}"
                      for name, s in sorted(features.items()) if s["drifted"]]
    if result.prediction and result.prediction["drifted"]:
        result.drifted.append(f"prediction: PSI {result.prediction['psi']:.3g} > {result.prediction['threshold']:g}")
    result.status = "drift" if result.drifted else "ok"
    return result


def read_signals(folder: Path) -> dict[str, dict]:
    """Every signals/<name>.json under a downloaded output folder."""
    found = {}
    for path in sorted(folder.rglob("signals/*.json")):
        data = json.loads(path.read_text())
        found[data.get("signalName") or path.stem] = data
    return found
