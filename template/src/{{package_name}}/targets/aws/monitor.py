"""SageMaker Model Monitor of one environment's endpoint: set up by `deploy`, read by `monitor`.

Set-up (idempotent: a second deploy updates, never duplicates):
1. baseline: baseline.csv of the serving version goes to S3 and Model Monitor's own suggest-baseline
   processing job computes statistics.json and constraints.json from it, once per version (prod reuses
   staging's). Why the job and not files written here from baseline.json: the data-quality analyzer
   measures drift between KLL sketches that it writes into statistics.json itself; a hand-made file
   would have to imitate that undocumented sketch. The suggested constraints are then tuned:
   `comparison_threshold` = monitoring.drift_threshold and `emit_metrics` on, so every feature's
   `feature_baseline_drift_<name>` reaches CloudWatch.
2. a data-quality job definition (per version: SageMaker cannot update one) with the record
   preprocessor (monitor_preprocessor.py) that splits each captured request into rows, and an hourly
   monitoring schedule, created or updated to point at it;
3. one CloudWatch alarm per feature on its drift metric, named after the feature and sent to the
   stack's alert topic (ALERT_TOPIC_ARN), so the message a person reads names what drifted, and a
   drift alarm on prod starts a retraining run (infra/aws/pipeline.yaml);
4. with monitoring.ground_truth an s3:// prefix (labels in Model Monitor's ground-truth format): a
   model-quality job definition and schedule whose constraint is the gate metric.

Reading: the newest finished execution of the schedule, its constraint_violations.json -> MonitorResult.
"""

from __future__ import annotations

import csv
import json
import re
from functools import lru_cache
from pathlib import Path

from botocore.exceptions import ClientError, WaiterError

from ...errors import StageFailed
from ..base import MonitorResult

HOURLY = "cron(0 * ? * * *)"
METRIC_NAMESPACE = "aws/sagemaker/Endpoints/data-metrics"
DRIFT_METRIC = "feature_baseline_drift_{}"
ALERT_TOPIC_VARIABLE = "ALERT_TOPIC_ARN"  # set on the CodeBuild project by infra/aws/pipeline.yaml
PROCESSING = "/opt/ml/processing"
FINISHED = ("Completed", "CompletedWithViolations", "Failed")
# Model Monitor's model-quality metric for each gate metric (binary / multiclass / regression).
QUALITY_METRICS = {
    "BinaryClassification": {"accuracy": "accuracy", "f1": "f1", "precision": "precision",
                             "recall": "recall", "roc_auc": "auc"},
    "MulticlassClassification": {"accuracy": "accuracy", "f1": "weighted_f1",
                                 "precision": "weighted_precision", "recall": "weighted_recall"},
    "Regression": {"r2": "r2", "rmse": "rmse", "mae": "mae"},
}
QUALITY_CONSTRAINTS = {"BinaryClassification": "binary_classification_constraints",
                       "MulticlassClassification": "multiclass_classification_constraints",
                       "Regression": "regression_constraints"}
# numbers standing alone in a violation's description ("distance: 0.53 exceeds threshold: 0.2"), not
# digits inside a metric name (weightedF2)
_NUMBER = re.compile(r"(?<![A-Za-z0-9_.])-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@lru_cache(maxsize=16)
def image_uri(region: str) -> str:
    """The Model Monitor analyzer image of `region`, from the SageMaker SDK's image table (cached: each
    lookup builds a botocore session of its own to resolve the region's endpoint)."""
    from sagemaker.core import image_uris

    return image_uris.retrieve("model-monitor", region)


def preprocessor_source(features: list[str]) -> bytes:
    source = (Path(__file__).parent / "monitor_preprocessor.py").read_text()
    marker = "FEATURES: list = []  # written in on upload"
    return source.replace(marker, f"FEATURES: list = {json.dumps(features)}", 1).encode()


def tune_constraints(constraints: dict, drift_threshold: float) -> dict:
    """The suggested constraints with this project's drift threshold and CloudWatch metrics on."""
    config = dict(constraints.get("monitoring_config") or {})
    distribution = dict(config.get("distribution_constraints") or {})
    distribution.update(perform_comparison="Enabled", comparison_threshold=drift_threshold)
    distribution.setdefault("comparison_method", "Robust")
    config.update(emit_metrics="Enabled", distribution_constraints=distribution)
    return {**constraints, "monitoring_config": config}


def _is_not_found(exc: ClientError) -> bool:
    error = exc.response.get("Error", {})
    message = error.get("Message", "").lower()
    return error.get("Code") == "ResourceNotFound" or (
        error.get("Code") == "ValidationException"
        and any(words in message for words in ("not found", "does not exist", "not find")))


class ModelMonitor:
    """Model Monitor for the endpoints of one AwsTarget (its clients, names, bucket and tags)."""

    def __init__(self, target) -> None:
        self.target = target
        self.config = target.config
        self.settings = target.aws.monitor

    # -- names ---------------------------------------------------------------------------------------
    def schedule_name(self, env: str, kind: str = "data") -> str:
        from .target import resource_name

        return resource_name(self.config.model.name, env, f"{kind}-monitor")

    def _definition_name(self, env: str, kind: str, version: str) -> str:
        from .target import _stamp, resource_name

        return resource_name(self.config.model.name, env, kind, f"v{version}", _stamp())

    def drift_alarm(self, env: str, feature: str) -> str:
        safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", feature)
        return f"{self.target.endpoint_name(env)}-drift-{safe}"[:255]

    def _uri(self, *parts: str) -> str:
        return f"s3://{self.target.bucket()}/{self.target._key('monitoring', *parts)}"

    # -- set-up ----------------------------------------------------------------------------------------
    def setup(self, env: str, version: str, baseline_dir: Path) -> dict:
        features = self._features(baseline_dir)
        image = image_uri(self.target.aws.region)
        statistics, constraints = self._baseline(version, baseline_dir, image)
        preprocessor = self.target._upload(
            self.target._key("monitoring", f"v{version}", "preprocessor.py"), preprocessor_source(features))
        endpoint = self.target.endpoint_name(env)
        definition = self._definition_name(env, "dq", version)
        self._sm().create_data_quality_job_definition(
            JobDefinitionName=definition,
            DataQualityBaselineConfig={"ConstraintsResource": {"S3Uri": constraints},
                                       "StatisticsResource": {"S3Uri": statistics}},
            DataQualityAppSpecification={"ImageUri": image, "RecordPreprocessorSourceUri": preprocessor,
                                         "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
            DataQualityJobInput={"EndpointInput": self._endpoint_input(endpoint)},
            DataQualityJobOutputConfig=self._output(env, "data-quality"),
            **self._job_common(version),
        )
        set_up = {"schedule": self._schedule(env, "data", definition, "DataQuality"), "job_definition": definition,
                  "baseline": {"statistics": statistics, "constraints": constraints},
                  "alarms": self._drift_alarms(env, features)}
        ground_truth = self.config.monitoring.ground_truth or ""
        if ground_truth.startswith("s3://"):
            set_up["quality"] = self._model_quality(env, version, baseline_dir, image, ground_truth)
        return set_up

    def _sm(self):
        return self.target.client("sagemaker")

    @staticmethod
    def _features(baseline_dir: Path) -> list[str]:
        meta = baseline_dir / "model.json"
        if meta.is_file() and json.loads(meta.read_text()).get("features"):
            return list(json.loads(meta.read_text())["features"])
        with (baseline_dir / "baseline.csv").open(newline="") as handle:
            return next(csv.reader(handle))

    def _job_common(self, version: str) -> dict:
        return {
            "JobResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": self.settings.instance_type,
                                               "VolumeSizeInGB": self.settings.volume_size_gb}},
            "StoppingCondition": {"MaxRuntimeInSeconds": self.settings.max_runtime_seconds},
            "RoleArn": self.target.role_arn(),
            "Tags": self.target._tags(**{"mlops:version": version}),
        }

    def _endpoint_input(self, endpoint: str, **extra) -> dict:
        return {"EndpointName": endpoint, "LocalPath": f"{PROCESSING}/input/endpoint",
                "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated", **extra}

    def _output(self, env: str, kind: str) -> dict:
        return {"MonitoringOutputs": [{"S3Output": {"S3Uri": self._uri("reports", env, kind),
                                                    "LocalPath": f"{PROCESSING}/output",
                                                    "S3UploadMode": "EndOfJob"}}]}

    def _baseline(self, version: str, baseline_dir: Path, image: str) -> tuple[str, str]:
        """(statistics, constraints) URIs of `version`: the suggest-baseline job runs once per version."""
        s3, bucket = self.target.client("s3"), self.target.bucket()
        folder = self.target._key("monitoring", f"v{version}")
        suggested = f"{folder}/suggested"
        if not self._exists(f"{suggested}/constraints.json"):
            data = self.target._upload(f"{folder}/baseline/baseline.csv", (baseline_dir / "baseline.csv").read_bytes())
            self._suggest_baseline(version, data.rsplit("/", 1)[0], f"s3://{bucket}/{suggested}", image)
        try:
            body = s3.get_object(Bucket=bucket, Key=f"{suggested}/constraints.json")["Body"].read()
        except ClientError as exc:
            raise StageFailed(f"monitoring: the baseline job left no constraints.json under "
                              f"s3://{bucket}/{suggested}: {exc}") from None
        tuned = tune_constraints(json.loads(body), self.config.monitoring.drift_threshold)
        constraints = self.target._upload(f"{folder}/constraints.json", json.dumps(tuned, indent=2).encode())
        return f"s3://{bucket}/{suggested}/statistics.json", constraints

    def _exists(self, key: str) -> bool:
        try:
            self.target.client("s3").head_object(Bucket=self.target.bucket(), Key=key)
            return True
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def _suggest_baseline(self, version: str, data: str, output: str, image: str) -> None:
        """Model Monitor's own baselining job (what the SDK's DefaultModelMonitor.suggest_baseline runs)."""
        from .target import _stamp, resource_name

        job = resource_name(self.config.model.name, "baseline", f"v{version}", _stamp())
        common = self._job_common(version)
        self._sm().create_processing_job(
            ProcessingJobName=job,
            ProcessingInputs=[{"InputName": "baseline_dataset_input", "AppManaged": False, "S3Input": {
                "S3Uri": data, "LocalPath": f"{PROCESSING}/input/baseline_dataset_input",
                "S3DataType": "S3Prefix", "S3InputMode": "File", "S3DataDistributionType": "FullyReplicated"}}],
            ProcessingOutputConfig={"Outputs": [{"OutputName": "monitoring_output", "AppManaged": False, "S3Output": {
                "S3Uri": output, "LocalPath": f"{PROCESSING}/output", "S3UploadMode": "EndOfJob"}}]},
            ProcessingResources=common["JobResources"],
            StoppingCondition=common["StoppingCondition"],
            AppSpecification={"ImageUri": image},
            Environment={"dataset_format": json.dumps({"csv": {"header": True}}),
                         "dataset_source": f"{PROCESSING}/input/baseline_dataset_input",
                         "output_path": f"{PROCESSING}/output", "publish_cloudwatch_metrics": "Disabled"},
            RoleArn=common["RoleArn"],
            Tags=common["Tags"],
        )
        try:
            self.target._wait("processing_job_completed_or_stopped", ProcessingJobName=job)
        except WaiterError:
            pass  # the description below says why
        described = self._sm().describe_processing_job(ProcessingJobName=job)
        if described["ProcessingJobStatus"] != "Completed":
            raise StageFailed(f"monitoring: baseline job {job} ended {described['ProcessingJobStatus']}: "
                              f"{described.get('FailureReason') or described.get('ExitMessage') or 'no reason given'}")

    def _schedule(self, env: str, kind: str, definition: str, monitoring_type: str) -> str:
        name = self.schedule_name(env, kind)
        config = {"ScheduleConfig": {"ScheduleExpression": HOURLY}, "MonitoringJobDefinitionName": definition,
                  "MonitoringType": monitoring_type}
        previous = self._described_schedule(name)
        if previous is None:
            self._sm().create_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig=config,
                                                  Tags=self.target._tags(**{"mlops:env": env}))
            return name
        self._sm().update_monitoring_schedule(MonitoringScheduleName=name, MonitoringScheduleConfig=config)
        old = previous.get("MonitoringScheduleConfig", {}).get("MonitoringJobDefinitionName")
        if old and old != definition:
            self._delete_definition(old, monitoring_type)
        return name

    def _described_schedule(self, name: str) -> dict | None:
        try:
            return self._sm().describe_monitoring_schedule(MonitoringScheduleName=name)
        except ClientError as exc:
            if _is_not_found(exc):
                return None
            raise

    def _delete_definition(self, name: str, monitoring_type: str) -> None:
        delete = (self._sm().delete_data_quality_job_definition if monitoring_type == "DataQuality"
                  else self._sm().delete_model_quality_job_definition)
        try:
            delete(JobDefinitionName=name)
        except ClientError as exc:
            if not _is_not_found(exc):
                raise

    def _drift_alarms(self, env: str, features: list[str]) -> list[str]:
        """One alarm per feature on Model Monitor's drift distance, to the alert topic; alarms of features
        the model no longer has are removed."""
        import os

        cloudwatch = self.target.client("cloudwatch")
        endpoint, schedule = self.target.endpoint_name(env), self.schedule_name(env)
        topic = os.environ.get(ALERT_TOPIC_VARIABLE, "")
        threshold = self.config.monitoring.drift_threshold
        names = []
        for feature in features:
            name = self.drift_alarm(env, feature)
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                AlarmDescription=f"{endpoint}: feature '{feature}' has drifted from the training data (Model "
                f"Monitor distance above {threshold}, monitoring.drift_threshold); see `python -m "
                f"{self.target_package()} monitor --target aws --env {env}`"[:1024],
                Namespace=METRIC_NAMESPACE,
                MetricName=DRIFT_METRIC.format(feature),
                Dimensions=[{"Name": "Endpoint", "Value": endpoint}, {"Name": "MonitoringSchedule", "Value": schedule}],
                Statistic="Maximum",
                Period=3600,
                EvaluationPeriods=1,
                Threshold=float(threshold),
                ComparisonOperator="GreaterThanThreshold",
                TreatMissingData="notBreaching",
                **({"AlarmActions": [topic]} if topic else {}),
                Tags=self.target._tags(**{"mlops:env": env}),
            )
            names.append(name)
        prefix = self.drift_alarm(env, "")
        stale = [a["AlarmName"] for a in cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]
                 if a["AlarmName"] not in names]
        if stale:
            cloudwatch.delete_alarms(AlarmNames=stale)
        return names

    @staticmethod
    def target_package() -> str:
        return __package__.split(".")[0]

    def _model_quality(self, env: str, version: str, baseline_dir: Path, image: str, ground_truth: str) -> dict:
        meta = json.loads((baseline_dir / "model.json").read_text()) if (baseline_dir / "model.json").is_file() else {}
        if self.config.task == "regression":
            problem = "Regression"
        else:
            problem = "BinaryClassification" if len(meta.get("classes") or [0, 1]) <= 2 else "MulticlassClassification"
        metric = QUALITY_METRICS[problem].get(self.config.gate.metric)
        request = {}
        constraints = None
        if metric:
            threshold = self.config.monitoring.quality_threshold
            threshold = self.config.gate.threshold if threshold is None else threshold
            operator = "GreaterThanThreshold" if metric in ("rmse", "mae") else "LessThanThreshold"
            body = {"version": 0.0, QUALITY_CONSTRAINTS[problem]: {
                metric: {"threshold": float(threshold), "comparison_operator": operator}}}
            constraints = self.target._upload(
                self.target._key("monitoring", f"v{version}", "quality-constraints.json"), json.dumps(body).encode())
            request["ModelQualityBaselineConfig"] = {"ConstraintsResource": {"S3Uri": constraints}}
        hours = int(self.config.monitoring.window.hours or 24)
        definition = self._definition_name(env, "mq", version)
        self._sm().create_model_quality_job_definition(
            JobDefinitionName=definition,
            ModelQualityAppSpecification={"ImageUri": image, "ProblemType": problem,
                                          "Environment": {"publish_cloudwatch_metrics": "Enabled"}},
            ModelQualityJobInput={
                "EndpointInput": self._endpoint_input(
                    self.target.endpoint_name(env), InferenceAttribute="predictions[0]",
                    StartTimeOffset=f"-PT{hours + 1}H", EndTimeOffset="-PT1H"),
                "GroundTruthS3Input": {"S3Uri": ground_truth},
            },
            ModelQualityJobOutputConfig=self._output(env, "model-quality"),
            **request,
            **self._job_common(version),
        )
        return {"schedule": self._schedule(env, "quality", definition, "ModelQuality"),
                "job_definition": definition, "problem_type": problem, "metric": metric, "constraints": constraints}

    # -- tear-down -------------------------------------------------------------------------------------
    def remove(self, env: str) -> None:
        """Schedules, their job definitions and the drift alarms of `env` (undeploy)."""
        for kind, monitoring_type in (("data", "DataQuality"), ("quality", "ModelQuality")):
            described = self._described_schedule(self.schedule_name(env, kind))
            if described is None:
                continue
            self._sm().delete_monitoring_schedule(MonitoringScheduleName=self.schedule_name(env, kind))
            definition = described.get("MonitoringScheduleConfig", {}).get("MonitoringJobDefinitionName")
            if definition:
                self._delete_definition(definition, monitoring_type)
        cloudwatch = self.target.client("cloudwatch")
        alarms = [a["AlarmName"] for a in cloudwatch.describe_alarms(
            AlarmNamePrefix=self.drift_alarm(env, ""))["MetricAlarms"]]
        if alarms:
            cloudwatch.delete_alarms(AlarmNames=alarms)

    # -- the latest verdict ----------------------------------------------------------------------------
    def latest(self, env: str) -> MonitorResult:
        schedule = self.schedule_name(env)
        result = MonitorResult(env=env, status="no_result", version=self.target._endpoint_tags(env).get("mlops:version"),
                               source=f"SageMaker Model Monitor schedule {schedule}", report_url=self.console_url(schedule),
                               window="the hour before each hourly execution")
        if self._described_schedule(schedule) is None:
            result.notes.append(f"no monitoring schedule {schedule}: `deploy --target aws --env {env}` sets it up")
            return result
        execution = self._latest_execution(schedule)
        if execution is None:
            result.notes.append(f"{schedule} has no finished execution yet (it runs hourly)")
            return result
        status, reason = execution["MonitoringExecutionStatus"], execution.get("FailureReason", "")
        result.notes.append(f"execution scheduled {execution['ScheduledTime']}: {status}")
        if status == "Failed":
            if "no data" in reason.lower():
                result.status = "too_little_traffic"
                result.notes.append(f"no captured traffic in the window ({reason})")
            else:
                result.notes.append(f"the execution failed: {reason or 'no reason given'}")
            return result
        output = self._output_uri(execution)
        statistics = self._report(output, "statistics.json", required=False) or {}
        result.rows = int((statistics.get("dataset") or {}).get("item_count") or 0)
        if statistics and result.rows < self.config.monitoring.min_rows:
            result.status = "too_little_traffic"
            result.notes.append(f"{result.rows} captured rows in the window, fewer than monitoring.min_rows "
                                f"({self.config.monitoring.min_rows}): no verdict on drift")
            return result
        violations = (self._report(output, "constraint_violations.json") or {}).get("violations", []) \
            if status == "CompletedWithViolations" else []
        self._apply_violations(result, violations)
        quality = self._quality(env)
        if quality is not None:
            result.quality = quality
            if not quality["passed"] and result.status == "ok":
                result.status = "quality"
        return result

    def console_url(self, schedule: str) -> str:
        region = self.target.aws.region
        return (f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
                f"#/monitoring-schedules/{schedule}")

    def _latest_execution(self, schedule: str) -> dict | None:
        page = self._sm().list_monitoring_executions(
            MonitoringScheduleName=schedule, SortBy="ScheduledTime", SortOrder="Descending", MaxResults=10)
        finished = [e for e in page.get("MonitoringExecutionSummaries", [])
                    if e.get("MonitoringExecutionStatus") in FINISHED]
        return finished[0] if finished else None

    def _output_uri(self, execution: dict) -> str:
        """Where the execution's processing job wrote its reports."""
        arn = execution.get("ProcessingJobArn", "")
        job = self._sm().describe_processing_job(ProcessingJobName=arn.rsplit("/", 1)[-1])
        return job["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"].rstrip("/")

    def _report(self, output: str, name: str, required: bool = True) -> dict | None:
        bucket, _, key = output.removeprefix("s3://").partition("/")
        try:
            body = self.target.client("s3").get_object(Bucket=bucket, Key=f"{key}/{name}")["Body"].read()
        except ClientError as exc:
            if not required and exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                return None
            raise StageFailed(f"monitor: cannot read {output}/{name}: {exc}") from None
        return json.loads(body)

    def _apply_violations(self, result: MonitorResult, violations: list[dict]) -> None:
        """Model Monitor's violations -> drifted features with their distance (baseline_drift_check), and
        any other broken constraint (a missing column, a wrong type, completeness) named with its check."""
        threshold = self.config.monitoring.drift_threshold
        result.status = "ok"
        for violation in violations:
            feature = violation.get("feature_name", "?")
            check = violation.get("constraint_check_type", "")
            description = violation.get("description", "")
            if check == "baseline_drift_check":
                numbers = [float(n) for n in _NUMBER.findall(description)]
                score = numbers[0] if numbers else None
                limit = numbers[1] if len(numbers) > 1 else threshold
                result.features[feature] = {"score": score, "threshold": limit, "drifted": True, "check": check}
                shown = f"{score:.3g}" if score is not None else "?"
                result.drifted.append(f"{feature}: distance {shown} > {limit:g}")
            else:
                result.features.setdefault(feature, {"drifted": True, "check": check})
                result.drifted.append(f"{feature}: {check}: {description}")
        if result.drifted:
            result.status = "drift"

    def _quality(self, env: str) -> dict | None:
        schedule = self.schedule_name(env, "quality")
        if self._described_schedule(schedule) is None:
            return None
        execution = self._latest_execution(schedule)
        if execution is None or execution["MonitoringExecutionStatus"] == "Failed":
            return None
        metric = self.config.gate.metric
        quality = {"metric": metric, "value": None, "threshold": self.config.monitoring.quality_threshold
                   if self.config.monitoring.quality_threshold is not None else self.config.gate.threshold,
                   "passed": True, "rows": 0}
        if execution["MonitoringExecutionStatus"] == "CompletedWithViolations":
            report = self._report(self._output_uri(execution), "constraint_violations.json") or {}
            for violation in report.get("violations", []):
                numbers = [float(n) for n in _NUMBER.findall(violation.get("description", ""))]
                quality.update(passed=False, value=numbers[0] if numbers else None,
                               check=violation.get("constraint_check_type"))
        return quality
