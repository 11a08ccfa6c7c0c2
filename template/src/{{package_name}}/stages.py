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

from . import contract
from .config import Config
from .errors import ConfigError, StageFailed
from .targets import Target

ARTIFACTS = Path("artifacts")
SAMPLE_ROWS = 8


def _finite(value):
    """JSON has no NaN or Infinity: an undefined number is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _write(path: Path, payload: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_finite(payload), indent=2, default=str, allow_nan=False) + "\n")


def _read(path: Path, produced_by: str) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise StageFailed(f"{path} is missing: run `{produced_by}` first") from None


def _read_optional(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


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
    from . import data as data_lib  # here, not at the top: stages that read JSON start in well under 1 s
    from . import model as model_lib

    artifacts = root / ARTIFACTS
    X, y = data_lib.load_frame(config)
    X_train, X_test, y_train, _ = data_lib.split(config, X, y)
    managed = target.train(artifacts)
    if not managed:
        pipeline, meta = model_lib.fit(config, X_train, y_train)
        model_lib.save(pipeline, meta, artifacts / "model")
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
    sample = {"instances": _rows(X_test.head(SAMPLE_ROWS))}
    _write(artifacts / "sample.json", sample)
    _write(artifacts / "model" / "sample.json", sample)  # registered with the version: smoke of the next one
    result = {"rows": len(X_train), "features": len(X.columns), "managed": managed}
    if config.task == "classification":
        pos = model_lib.positive_class(config, y_train)
        result["positive_class"] = None if pos is None else contract.plain(pos)
    return result


def _rows(frame) -> list[list]:
    """Rows as a client sends them: plain JSON values, null for missing."""
    return [[None if v is None or (isinstance(v, float) and math.isnan(v)) else contract.plain(v) for v in row]
            for row in frame.astype(object).itertuples(index=False)]


def evaluate(config: Config, target: Target, root: Path) -> dict:
    """Scores the model, the trivial baseline and (when the target can fetch it) the champion on the
    same test set: metrics.json, and evaluation.json for the gate."""
    from . import data as data_lib
    from . import model as model_lib

    artifacts = root / ARTIFACTS
    if not (artifacts / "model" / "model.joblib").exists():
        raise StageFailed(f"{artifacts / 'model'} is missing: run `train` first")
    pipeline, meta = model_lib.load(artifacts / "model")
    X, y = data_lib.load_frame(config, report=lambda *a, **k: None)
    X_train, X_test, y_train, y_test = data_lib.split(config, X, y)
    metrics = model_lib.compute_metrics(pipeline, meta, X_test, y_test)
    champion = target.champion()
    champion_metrics, champion_note = None, "no champion (nothing serves prod yet)"
    if champion is not None:
        champion_metrics, champion_note = _rescore(target, champion, X_test, y_test)
    _write(artifacts / "metrics.json", metrics)
    _write(artifacts / "evaluation.json", {
        "test_rows": len(y_test),
        "data": {"source": config.data.source, "fingerprint": data_lib.fingerprint(X, y),
                 "test_size": config.data.test_size, "seed": config.data.seed},
        "averaging": model_lib.averaging(meta),
        "baseline": model_lib.baseline_metrics(config, meta, X_train, y_train, X_test, y_test),
        "champion": {"version": champion.version if champion else None, "metrics": champion_metrics,
                     "note": champion_note},
    })
    return metrics


def _rescore(target: Target, champion, X_test, y_test) -> tuple[dict | None, str]:
    """The champion's metrics on this run's test set, or (None, why) when it cannot be fetched."""
    import tempfile

    from . import model as model_lib
    from . import schema as schema_lib

    with tempfile.TemporaryDirectory() as tmp:
        folder = target.fetch_model(champion.version, Path(tmp))
        if folder is None:
            return None, f"the {target.name} target cannot fetch version {champion.version} to re-score it"
        pipeline, meta = model_lib.load(folder)
        try:
            return model_lib.compute_metrics(pipeline, meta, X_test, y_test), "re-scored on this run's test set"
        except (schema_lib.SchemaError, KeyError, ValueError) as exc:
            return None, f"version {champion.version} cannot score this data ({exc})"


def _number(value) -> float:
    return math.nan if value is None else float(value)


def gate(config: Config, target: Target, root: Path) -> dict:
    """Fails (exit 1) unless the metric is a number, meets the threshold, beats the trivial baseline by
    gate.min_lift, was measured on at least data.min_test_rows rows, and trails the champion, scored on
    the same test set, by no more than gate.tolerance."""
    metrics = _read(root / ARTIFACTS / "metrics.json", "evaluate")
    evaluation = _read(root / ARTIFACTS / "evaluation.json", "evaluate")
    gate_cfg, name = config.gate, config.gate.metric
    value, lower = _number(metrics.get(name)), gate_cfg.lower_is_better

    def better_by(a: float, b: float) -> float:
        return (b - a) if lower else (a - b)

    reasons = []
    if not math.isfinite(value):
        reasons.append(f"{name} could not be computed on the test set (undefined, e.g. a single class in it)")
    elif (value > gate_cfg.threshold) if lower else (value < gate_cfg.threshold):
        reasons.append(f"{name}={value:.4f} misses the threshold {'<=' if lower else '>='} {gate_cfg.threshold}")
    rows = evaluation["test_rows"]
    if rows < config.data.min_test_rows:
        reasons.append(f"only {rows} test rows (data.min_test_rows: {config.data.min_test_rows}): "
                       "too few to tell a good model from luck")
    baseline = _number(evaluation["baseline"].get(name))
    lift = better_by(value, baseline) if math.isfinite(value) and math.isfinite(baseline) else math.nan
    if math.isfinite(lift) and lift < gate_cfg.min_lift:
        reasons.append(f"{name}={value:.4f} does not beat the trivial baseline ({name}={baseline:.4f}) by "
                       f"gate.min_lift {gate_cfg.min_lift}")
    champion = evaluation["champion"]
    champion_value = _number((champion.get("metrics") or {}).get(name))
    if math.isfinite(champion_value) and math.isfinite(value):
        worse_by = better_by(champion_value, value)
        if worse_by > gate_cfg.tolerance:
            reasons.append(f"{name}={value:.4f} is worse than the champion (version {champion['version']}, "
                           f"{name}={champion_value:.4f} on the same test set) by {worse_by:.4f} > "
                           f"tolerance {gate_cfg.tolerance}")
    result = {
        "metric": name, "value": value, "threshold": gate_cfg.threshold, "passed": not reasons, "reasons": reasons,
        "test_rows": rows, "data": evaluation["data"], "averaging": evaluation["averaging"],
        "baseline": {"value": baseline, "lift": lift, "min_lift": gate_cfg.min_lift},
        "champion": {"version": champion["version"], "value": champion_value, "scored_on": champion["note"]},
    }
    result = _finite(result)
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


def read_release(location: str) -> dict:
    """The release record a smoke test wrote (`artifacts/smoked-<env>.json`, or that file where the CI
    copied it: a path or an fsspec URI such as gs://...): the exact version that passed it."""
    try:
        if "://" in location:
            import fsspec

            with fsspec.open(location, "rt", encoding="utf-8") as handle:
                record = json.load(handle)
        else:
            record = json.loads(Path(location).read_text(encoding="utf-8"))
    except (OSError, ValueError, ImportError) as exc:
        raise ConfigError(f"--release {location}: cannot read the release record ({exc})") from None
    if not isinstance(record, dict) or not record.get("version") or record.get("passed") is not True:
        raise ConfigError(f"--release {location}: not a passed smoke test's record (needs version and passed: true)")
    return record


def deploy(config: Config, target: Target, root: Path, env: str, allow_schema_change: bool = False,
           version: str | None = None) -> dict:
    """Deploys `version` (from a release record), or the version due in `env`; refuses a change of the
    serving contract (the input schema) unless `allow_schema_change`: clients of the version serving
    now would break or be misread."""
    config.environment(env)
    serving = target.serving_version(env)
    due = str(version) if version is not None else target.due_version(env)
    changes: list[str] = []
    if serving is None or serving == due:
        check = "first deployment" if serving is None else "same version"
    else:
        old_schema, new_schema = target.schema_of(serving), target.schema_of(due)
        if old_schema is None or new_schema is None:
            check = f"not checked: the {target.name} target could not fetch both schemas"
        else:
            changes = contract.differences(old_schema, new_schema)
            check = "unchanged" if not changes else "changed, allowed by --allow-schema-change"
    if changes and not allow_schema_change:
        raise StageFailed(f"deploy: the input schema of {env} would change: {'; '.join(changes)}. "
                          "Clients must be updated; deploy with --allow-schema-change when they are")
    deployment = target.deploy(env, version)
    result = {"env": env, "endpoint": deployment.endpoint, "version": deployment.version,
              "schema": check, "schema_changes": changes}
    _write(root / ARTIFACTS / f"deployed-{env}.json", result)
    return result


def _valid_prediction(value, classes) -> bool:
    if classes is not None:
        return value in classes
    return isinstance(value, (int, float)) and math.isfinite(value)


def probe(config: Config, target: Target, root: Path, env: str) -> dict:
    """Requests the sample (and the previous version's) and checks the answers and the latency; also
    what a target runs on a new deployment before it takes traffic."""
    sample = _read(root / ARTIFACTS / "sample.json", "train")["instances"]
    classes = None
    model_json = root / ARTIFACTS / "model" / "model.json"
    if model_json.exists():
        classes = json.loads(model_json.read_text()).get("classes")
    previous = _previous_sample_check(target, env)
    latencies, predictions = [], []
    # One warm-up request first: its answer is checked like the others, but a fresh server's first
    # request (connection set-up, lazy imports) is not what smoke.max_latency_ms bounds.
    for attempt in range(config.smoke.requests + 1):
        started = time.perf_counter()
        predictions = target.invoke(env, sample)
        if attempt:
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
        "max_ms": round(worst, 1), "first_prediction": predictions[0], "previous_version_request": previous,
    }


def smoke(config: Config, target: Target, root: Path, env: str, record_to: str | None = None) -> dict:
    """`probe` on the live endpoint of `env`, then the release record of the version that passed:
    artifacts/smoked-<env>.json (and `record_to`: a path or an fsspec URI such as gs://..., for a
    release build that does not share this build's workspace)."""
    result = probe(config, target, root, env)
    # The release record: the exact version that passed, which the next environment deploys
    # (`promote/deploy --release artifacts/smoked-<env>.json`), never "the latest approved".
    deployed = _read_optional(root / ARTIFACTS / f"deployed-{env}.json")
    version = target.serving_version(env) or (deployed or {}).get("version")
    record = {
        "env": env, "version": version, "target": getattr(target, "name", ""), "passed": True,
        "git_commit": git_commit(root), "smoked_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "endpoint": (deployed or {}).get("endpoint"),
    }
    _write(root / ARTIFACTS / f"smoked-{env}.json", record)
    if record_to:
        _write_to(record_to, record)
    return {**result, "version": version}


def _write_to(location: str, payload: dict) -> None:
    text = json.dumps(_finite(payload), indent=2, default=str, allow_nan=False) + "\n"
    if "://" in location:
        import fsspec

        with fsspec.open(location, "wt", encoding="utf-8") as handle:
            handle.write(text)
    else:
        path = Path(location)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")


def _previous_sample_check(target: Target, env: str) -> str:
    """Whether the request the version served before accepted still works (reported, not failed:
    deploy already refuses a schema change that was not allowed)."""
    if not getattr(target, "keeps_previous_samples", False):
        return f"not checked: the {getattr(target, 'name', '')} target keeps no sample per version"
    sample = target.previous_sample(env)
    if sample is None:
        return "no previous version in this environment"
    try:
        target.invoke(env, sample)
    except Exception as exc:  # any failure is the answer here
        return f"FAILS with the new version: {str(exc)[:200]}"
    return "still answered"


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
