"""The stages. Each is a function of (config, target, options); the CI files of every cloud call
them in the same order through `python -m <package> STAGE`."""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from . import data as data_lib
from . import model as model_lib
from .config import TASK, Config
from .errors import ConfigError, StageFailed
from .targets import Target

ARTIFACTS = Path("artifacts")
SAMPLE_ROWS = 8


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")


def _read(path: Path, produced_by: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StageFailed(f"{path} is missing: run `{produced_by}` first") from None


def git_commit(root: Path) -> str:
    for variable in ("CODEBUILD_RESOLVED_SOURCE_VERSION", "BUILD_SOURCEVERSION", "COMMIT_SHA"):
        if os.environ.get(variable):
            return os.environ[variable]
    try:
        return subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def train(config: Config, target: Target, root: Path) -> dict:
    artifacts = root / ARTIFACTS
    X, y = data_lib.load_frame(config)
    X_train, X_test, y_train, _ = data_lib.split(config, X, y)
    managed = target.train(artifacts)
    if not managed:
        pipeline = model_lib.build(config)
        pipeline.fit(X_train, y_train)
        model_lib.save(pipeline, list(X.columns), artifacts / "model")
    lineage = {
        "git_commit": git_commit(root),
        "data_source": config.data.source,
        "data_fingerprint": data_lib.fingerprint(X, y),
        "rows": {"train": len(X_train), "test": len(X_test)},
        "estimator": config.model.estimator,
        "params": config.model.params,
        "trained_on": target.name if managed else f"in-process ({platform.node() or 'host'})",
        "trained_at": datetime.now(UTC).isoformat(),
    }
    _write(artifacts / "lineage.json", lineage)
    _write(artifacts / "sample.json", {"instances": X_test.head(SAMPLE_ROWS).values.tolist()})
    return {"rows": len(X_train), "managed": managed}


def evaluate(config: Config, target: Target, root: Path) -> dict:
    artifacts = root / ARTIFACTS
    if not (artifacts / "model" / "model.joblib").exists():
        raise StageFailed(f"{artifacts / 'model'} is missing: run `train` first")
    pipeline, _ = model_lib.load(artifacts / "model")
    X, y = data_lib.load_frame(config)
    _, X_test, _, y_test = data_lib.split(config, X, y)
    metrics = model_lib.compute_metrics(pipeline, X_test, y_test)
    _write(artifacts / "metrics.json", metrics)
    return metrics


def gate(config: Config, target: Target, root: Path) -> dict:
    metrics = _read(root / ARTIFACTS / "metrics.json", "evaluate")
    name, threshold, tolerance = config.gate.metric, config.gate.threshold, config.gate.tolerance
    value = metrics[name]
    lower = config.gate.lower_is_better
    reasons = []
    if (value > threshold) if lower else (value < threshold):
        reasons.append(f"{name}={value:.4f} misses the threshold {'<=' if lower else '>='} {threshold}")
    champion = target.champion()
    champion_value = champion.metrics.get(name) if champion else None
    if champion_value is not None:
        worse_by = (value - champion_value) if lower else (champion_value - value)
        if worse_by > tolerance:
            reasons.append(
                f"{name}={value:.4f} is worse than the champion (version {champion.version}, "
                f"{name}={champion_value:.4f}) by {worse_by:.4f} > tolerance {tolerance}"
            )
    result = {
        "metric": name, "value": value, "threshold": threshold, "passed": not reasons, "reasons": reasons,
        "champion": {"version": champion.version, "value": champion_value} if champion else None,
    }
    _write(root / ARTIFACTS / "gate.json", result)
    if reasons:
        raise StageFailed("gate failed: " + "; ".join(reasons))
    return result


def register(config: Config, target: Target, root: Path, env: str) -> dict:
    artifacts = root / ARTIFACTS
    gate_result = _read(artifacts / "gate.json", "gate")
    if not gate_result["passed"]:
        raise StageFailed("register: the gate did not pass; a rejected model is never registered")
    metrics = _read(artifacts / "metrics.json", "evaluate")
    lineage = _read(artifacts / "lineage.json", "train")
    approved = not config.environment(env).approval_required
    version = target.register(artifacts / "model", metrics, lineage, approved=approved)
    result = {"version": version.version, "status": version.status, "uri": version.uri}
    _write(artifacts / "registered.json", result)
    return result


def deploy(config: Config, target: Target, root: Path, env: str) -> dict:
    config.environment(env)
    deployment = target.deploy(env)
    return {"env": env, "endpoint": deployment.endpoint, "version": deployment.version}


def _valid_prediction(value, classes) -> bool:
    if TASK == "classification":
        return value in classes if classes else True
    return isinstance(value, (int, float)) and math.isfinite(value)


def smoke(config: Config, target: Target, root: Path, env: str) -> dict:
    sample = _read(root / ARTIFACTS / "sample.json", "train")["instances"]
    classes = None
    model_json = root / ARTIFACTS / "model" / "model.json"
    if model_json.exists():
        classes = json.loads(model_json.read_text()).get("classes")
    latencies, predictions = [], []
    for _ in range(config.smoke.requests):
        started = time.perf_counter()
        predictions = target.invoke(env, sample)
        latencies.append((time.perf_counter() - started) * 1000)
        if not isinstance(predictions, list) or len(predictions) != len(sample):
            raise StageFailed(
                f"smoke: expected {len(sample)} predictions, got {str(predictions)[:200]}"
            )
        bad = [p for p in predictions if not _valid_prediction(p, classes)]
        if bad:
            raise StageFailed(f"smoke: predictions out of range: {bad[:3]}")
    worst = max(latencies)
    if worst > config.smoke.max_latency_ms:
        raise StageFailed(
            f"smoke: slowest request took {worst:.0f} ms > smoke.max_latency_ms {config.smoke.max_latency_ms:.0f}"
        )
    return {
        "env": env, "requests": len(latencies), "p50_ms": round(statistics.median(latencies), 1),
        "max_ms": round(worst, 1), "first_prediction": predictions[0],
    }


def promote(config: Config, target: Target, root: Path, version: str | None, to_env: str) -> dict:
    config.environment(to_env)
    promoted = target.promote(version, to_env)
    return {"version": promoted.version, "env": to_env, "status": promoted.status}


def rollback(config: Config, target: Target, root: Path, env: str) -> dict:
    config.environment(env)
    restored = target.rollback(env)
    return {"env": env, "version": restored.version}


PIPELINE = ("train", "evaluate", "gate", "register", "deploy", "smoke")


def run_stage(name: str, config: Config, target: Target, root: Path, env: str) -> dict:
    if name in ("train", "evaluate", "gate"):
        return globals()[name](config, target, root)
    if name in ("register", "deploy", "smoke", "rollback"):
        return globals()[name](config, target, root, env)
    raise ConfigError(f"unknown stage {name}")
