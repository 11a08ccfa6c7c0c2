"""Vertex AI's own monitor of an endpoint, as typed API requests built offline, and its answer read back.

Capture: the endpoint's request-response logging writes `monitoring.capture_percent` of the requests
to a BigQuery table (one per environment).

Monitor: a Model Monitoring (v1) ModelDeploymentMonitoringJob per endpoint. v1 is the generally
available API of the pinned google-cloud-aiplatform (2.7.0); the v2 ModelMonitor exists only in
v1beta1 (preview). The job runs every `gcp.monitor_interval_hours` and checks every input feature two
ways: *skew*, the traffic against the training data of the version serving (baseline.csv, uploaded
to Cloud Storage) - what `monitor` calls drift on every target - and *drift*, the traffic against the
previous window. Anomalies go to e-mail (`alerts.email`) and to Cloud Logging, where the drift
alert policy (infra/gcp/alerts/) and the retraining trigger pick them up.

Distances: Vertex AI scores numeric features with the Jensen-Shannon divergence and categorical ones
with the L-infinity distance, not with the population stability index (PSI) of
`monitoring.drift_threshold`. `thresholds` maps the PSI threshold onto them per feature: the smallest
shift of training-data share from a feature's largest bin (or category) to its second largest whose
PSI equals the threshold, measured in Vertex AI's distance (PSI 0.2 on deciles: Jensen-Shannon about
0.033 bits; on two equal categories: L-infinity about 0.22). `gcp.monitor_threshold` replaces the
mapping with one distance for every feature.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from google.cloud import aiplatform_v1 as v1
from google.protobuf import duration_pb2, field_mask_pb2, struct_pb2

from ...config import Config
from ..base import MonitorResult

OBJECTIVES = {  # Vertex AI's name for a check -> what it compares the traffic with
    v1.ModelDeploymentMonitoringObjectiveType.RAW_FEATURE_SKEW: "the training data",
    v1.ModelDeploymentMonitoringObjectiveType.RAW_FEATURE_DRIFT: "the previous window",
}
# Fields of the job that setup_monitoring owns (the rest is Vertex AI's): replaced on every deploy.
UPDATE_PATHS = (
    "display_name", "model_deployment_monitoring_objective_configs",
    "model_deployment_monitoring_schedule_config", "model_monitoring_alert_config",
    "logging_sampling_strategy", "labels", "enable_monitoring_pipeline_logs",
)
_FLOOR = 1e-4  # as monitoring/drift.py: an empty bin would make the logarithm infinite


# -- capture --------------------------------------------------------------------------------------
def capture_table(config: Config, env: str) -> str:
    """The BigQuery table that receives `env`'s captured requests (dataset made by infra/gcp/setup.sh), in
    env's own project with isolation: multi."""
    table = f"{config.model.name}_{env}".replace("-", "_")
    project = config.environment(env).gcp_project_id or config.gcp.project_id
    return f"bq://{project}.{config.gcp.capture_dataset}.{table}"


def logging_config(config: Config, env: str) -> v1.PredictRequestResponseLoggingConfig:
    """Request-response logging of `env`'s endpoint: its capture_percent of the requests, or off at 0."""
    percent = config.capture_percent(env)
    if percent == 0:
        return v1.PredictRequestResponseLoggingConfig(enabled=False)
    return v1.PredictRequestResponseLoggingConfig(
        enabled=True, sampling_rate=percent / 100,
        bigquery_destination=v1.BigQueryDestination(output_uri=capture_table(config, env)),
    )


# -- PSI threshold -> Vertex AI's distances ------------------------------------------------------
def _transfer_psi(a: float, b: float, delta: float) -> float:
    """PSI of moving `delta` of the share from a bin holding `a` to one holding `b`."""
    return delta * math.log(a / (a - delta)) + delta * math.log((b + delta) / b)


def _transfer_for(psi: float, a: float, b: float) -> float:
    lo, hi = 0.0, a
    for _ in range(60):  # bisection: the PSI of a transfer grows with it, without bound as it nears `a`
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _transfer_psi(a, b, mid) < psi else (lo, mid)
    return lo


def _jensen_shannon(p: tuple[float, float], q: tuple[float, float]) -> float:
    """Jensen-Shannon divergence in bits over the bins where p and q differ (the others add nothing)."""
    total = 0.0
    for x, y in zip(p, q, strict=True):
        m = (x + y) / 2
        total += sum(0.5 * v * math.log2(v / m) for v in (x, y) if v > 0)
    return total


def thresholds(baseline: dict, psi: float, fixed: float | None = None) -> dict[str, float]:
    """Per feature of baseline.json, the Vertex AI distance that matches a PSI of `psi` (see the
    module's docstring), or `fixed` for every feature."""
    found = {}
    for name, stats in baseline["features"].items():
        if fixed is not None:
            found[name] = fixed
            continue
        shares = stats["shares"].values() if isinstance(stats["shares"], dict) else stats["shares"]
        a, b = (sorted((max(s, _FLOOR) for s in shares), reverse=True) + [_FLOOR, _FLOOR])[:2]
        delta = _transfer_for(psi, a, b)
        value = delta if stats["kind"] == "categorical" else _jensen_shannon((a, b), (a - delta, b + delta))
        found[name] = round(value, 4)
    return found


# -- the monitoring job ---------------------------------------------------------------------------
def instance_schema(baseline: dict) -> str:
    """The analysis instance schema (OpenAPI YAML): the features in the order of the model's input
    rows, which Vertex AI needs to name the values of the prebuilt container's list instances."""
    import yaml

    kinds = {"numeric": "number", "categorical": "string"}
    properties = {name: {"type": kinds[s["kind"]]} for name, s in baseline["features"].items()}
    return yaml.safe_dump({"type": "object", "properties": properties, "required": list(properties)},
                          sort_keys=False)


def job_name(config: Config, env: str) -> str:
    return f"{config.model.name}-{env}-monitor"


def build_job(config: Config, env: str, *, endpoint: str, deployed_model_ids: list[str], version: str,
              baseline: dict, training_csv: str, schema_uri: str, output_uri: str,
              sample: list | None = None) -> v1.ModelDeploymentMonitoringJob:
    """The monitoring job of `env`'s endpoint for `version` (every deployed model on it)."""
    gcp, cfg = config.gcp, config.monitoring
    limits = {name: v1.ThresholdConfig(value=value)
              for name, value in thresholds(baseline, cfg.drift_threshold, gcp.monitor_threshold).items()}
    objective = v1.ModelMonitoringObjectiveConfig(
        training_dataset=v1.ModelMonitoringObjectiveConfig.TrainingDataset(
            gcs_source=v1.GcsSource(uris=[training_csv]), data_format="csv"),
        training_prediction_skew_detection_config=(
            v1.ModelMonitoringObjectiveConfig.TrainingPredictionSkewDetectionConfig(skew_thresholds=limits)),
        prediction_drift_detection_config=(
            v1.ModelMonitoringObjectiveConfig.PredictionDriftDetectionConfig(drift_thresholds=limits)),
    )
    interval = gcp.monitor_interval_hours * 3600
    # The window each run looks at: monitoring.window.hours when given (a row window has no equivalent).
    window = int(cfg.window.hours * 3600) if cfg.window.hours else interval
    alert = v1.ModelMonitoringAlertConfig(enable_logging=True)  # anomalies -> Cloud Logging -> alert policy
    if config.alerts.email:
        alert.email_alert_config = v1.ModelMonitoringAlertConfig.EmailAlertConfig(user_emails=[config.alerts.email])
    job = v1.ModelDeploymentMonitoringJob(
        display_name=job_name(config, env),
        endpoint=endpoint,
        model_deployment_monitoring_objective_configs=[
            v1.ModelDeploymentMonitoringObjectiveConfig(deployed_model_id=i, objective_config=objective)
            for i in deployed_model_ids
        ],
        model_deployment_monitoring_schedule_config=v1.ModelDeploymentMonitoringScheduleConfig(
            monitor_interval=duration_pb2.Duration(seconds=interval),
            monitor_window=duration_pb2.Duration(seconds=window)),
        logging_sampling_strategy=v1.SamplingStrategy(random_sample_config=v1.SamplingStrategy.RandomSampleConfig(
            sample_rate=config.capture_percent(env) / 100)),
        model_monitoring_alert_config=alert,
        analysis_instance_schema_uri=schema_uri,
        stats_anomalies_base_directory=v1.GcsDestination(output_uri_prefix=output_uri),
        enable_monitoring_pipeline_logs=True,
        labels={"environment": env, "model_version": str(version), "managed_by": "mlops-gen"},
    )
    if sample is not None:
        job.sample_predict_instance = struct_pb2.Value(list_value=struct_pb2.ListValue(values=[
            struct_pb2.Value(number_value=v) if isinstance(v, int | float) and not isinstance(v, bool)
            else struct_pb2.Value(string_value=str(v)) for v in sample
        ]))
    return job


def update_mask() -> field_mask_pb2.FieldMask:
    return field_mask_pb2.FieldMask(paths=list(UPDATE_PATHS))


def search_request(job: str, deployed_model_id: str, days: int = 7,
                   now: datetime | None = None) -> v1.SearchModelDeploymentMonitoringStatsAnomaliesRequest:
    """Both objectives' statistics of the last `days` for one deployed model."""
    end = now or datetime.now(UTC)
    return v1.SearchModelDeploymentMonitoringStatsAnomaliesRequest(
        model_deployment_monitoring_job=job, deployed_model_id=deployed_model_id,
        objectives=[v1.SearchModelDeploymentMonitoringStatsAnomaliesRequest.StatsAnomaliesObjective(type_=t)
                    for t in OBJECTIVES],
        start_time=end - timedelta(days=days), end_time=end,
    )


# -- its answer -> MonitorResult -----------------------------------------------------------------
def _newest(stats: v1.ModelMonitoringStatsAnomalies.FeatureHistoricStatsAnomalies):
    runs = [s for s in stats.prediction_stats if s.end_time]
    return max(runs, key=lambda s: s.end_time) if runs else None


def to_result(env: str, version: str | None, job: v1.ModelDeploymentMonitoringJob,
              answers: list[v1.ModelMonitoringStatsAnomalies], console_url: str) -> MonitorResult:
    """The newest run of each feature and objective: drifted when its distance crosses its threshold."""
    result = MonitorResult(env=env, status="no_result", version=version, source=f"Vertex AI: {job.name}",
                           report_url=console_url)
    pipeline = job.latest_monitoring_pipeline_metadata
    if pipeline.status.code:
        result.notes.append(f"the latest monitoring run ({pipeline.run_time}) failed: {pipeline.status.message}")
    ends = []
    for answer in answers:
        compared_with = OBJECTIVES.get(answer.objective)
        if compared_with is None:
            continue
        key = "skew" if answer.objective == v1.ModelDeploymentMonitoringObjectiveType.RAW_FEATURE_SKEW else "drift"
        for feature in answer.feature_stats:
            newest = _newest(feature)
            if newest is None:
                continue
            ends.append((newest.start_time, newest.end_time))
            threshold = newest.anomaly_detection_threshold or feature.threshold.value
            score = newest.distribution_deviation
            drifted = score > threshold
            item = result.features.setdefault(feature.feature_display_name, {"drifted": False})
            item[key] = {"score": round(score, 4), "threshold": threshold, "drifted": drifted,
                         "compared_with": compared_with, "stats": newest.stats_uri}
            if key == "skew" or "score" not in item:  # the headline: against the training data
                item.update(score=round(score, 4), threshold=threshold)
            item["drifted"] = item["drifted"] or drifted
            if drifted:
                result.drifted.append(f"{feature.feature_display_name}: distance {score:.3f} > {threshold:g} "
                                      f"(Vertex AI, against {compared_with})")
    if not ends:
        result.notes.append("Vertex AI has no monitoring statistics for this endpoint yet (the job runs every "
                            "monitor interval once traffic was logged)")
        return result
    start, end = max(ends, key=lambda e: e[1])
    result.window = f"{start.isoformat()} to {end.isoformat()}"
    result.status = "drift" if result.drifted else "ok"
    result.notes.append("scores are Vertex AI's distances (Jensen-Shannon for numbers, L-infinity for "
                        "categories), not PSI; rows per window are in each run's statistics (stats)")
    return result
