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
NO_NEW_DATA = "no-new-data.json"


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


def train(config: Config, target: Target, root: Path, if_new_data: bool = False) -> dict:
    """Fits the model (or runs the target's managed training), writes its lineage and the training
    data's statistics (the monitor's baseline) into the bundle. `if_new_data` (scheduled, new-data and
    drift-alarm runs): when the data is the champion's, say so, write artifacts/no-new-data.json
    (every later stage of this run then skips) and train nothing."""
    from . import data as data_lib  # here, not at the top: stages that read JSON start in well under 1 s
    from . import model as model_lib

    artifacts = root / ARTIFACTS
    X, y = data_lib.load_frame(config)
    fingerprint = data_lib.fingerprint(X, y)
    (artifacts / NO_NEW_DATA).unlink(missing_ok=True)
    if if_new_data:
        unchanged = _champion_trained_on(target, fingerprint)
        if unchanged is not None:
            _write(artifacts / NO_NEW_DATA, {"champion": unchanged, "data_fingerprint": fingerprint})
            return {"skipped": f"no new data: the data's fingerprint equals champion version {unchanged}'s; "
                               "nothing is trained, registered or deployed"}
    X_train, X_test, y_train, _ = data_lib.split(config, X, y)
    managed = target.train(artifacts)
    if not managed:
        pipeline, meta = model_lib.fit(config, X_train, y_train)
        model_lib.save(pipeline, meta, artifacts / "model")
    _finish_bundle(config, root, X_train, X_test, y_train, {
        "git_commit": git_commit(root),
        "data_source": config.data.source,
        "data_fingerprint": fingerprint,
        "rows": {"train": len(X_train), "test": len(X_test)},
        "estimator": config.model.estimator,
        "params": config.model.params,
        "trained_on": target.name if managed else f"in-process ({platform.node() or 'host'})",
        "trained_at": datetime.now(UTC).isoformat(),
    })
    result = {"rows": len(X_train), "features": len(X.columns), "managed": managed}
    if config.task == "classification":
        pos = model_lib.positive_class(config, y_train)
        result["positive_class"] = None if pos is None else contract.plain(pos)
    return result


def _finish_bundle(config: Config, root: Path, X_train, X_test, y_train, lineage: dict) -> None:
    """What every new model gets, trained here or imported: the monitor's baseline, its lineage and
    the sample request smoke tests send, in artifacts/ and inside the bundle (they travel with the
    version to every registry)."""
    artifacts = root / ARTIFACTS
    _write_baseline(config, artifacts / "model", X_train, y_train)
    sample = {"instances": _rows(X_test.head(SAMPLE_ROWS))}
    for name, payload in (("lineage.json", lineage), ("sample.json", sample)):
        _write(artifacts / name, payload)
        _write(artifacts / "model" / name, payload)


def import_model(config: Config, target: Target, root: Path, source: str) -> dict:
    """A model trained elsewhere becomes this run's candidate, exactly as if `train` had fitted it:
    `evaluate`, `gate` (threshold, baseline, champion), `register`, `deploy` and `smoke` follow. Its
    features must be the configured data's (exit 2 naming the missing or extra ones)."""
    from . import data as data_lib
    from . import importing
    from . import model as model_lib

    artifacts = root / ARTIFACTS
    (artifacts / NO_NEW_DATA).unlink(missing_ok=True)
    X, y = data_lib.load_frame(config, report=lambda *a, **k: None)
    estimator, origin = importing.load(source)
    names = importing.feature_names(estimator, source, list(X.columns))
    X = X[names]
    X_train, X_test, y_train, _ = data_lib.split(config, X, y)
    meta = importing.meta(config, estimator, X_train, y_train)
    model_lib.save(estimator, meta, artifacts / "model")
    _finish_bundle(config, root, X_train, X_test, y_train, {
        "git_commit": git_commit(root),
        "data_source": config.data.source,
        "data_fingerprint": data_lib.fingerprint(X, y),
        "rows": {"train": len(X_train), "test": len(X_test)},
        "estimator": type(estimator).__name__,
        "imported_from": origin,
        "trained_on": "elsewhere (imported)",
        "trained_at": datetime.now(UTC).isoformat(),
    })
    return {"imported": origin["source"], "estimator": type(estimator).__name__, "features": len(names)}


def batch(config: Config, target: Target, root: Path, env: str, source: str, output: str,
          version: str | None = None) -> dict:
    """Scores every row of `source` with the version serving `env` (or `version`): on this machine for
    the local target, as the platform's batch job for a cloud target. Fails (exit 1) when more rows
    than batch.max_reject_rate were rejected; the rejects file says why for each."""
    import tempfile

    config.environment(env)
    version = version or target.serving_version(env) or target.due_version(env)
    if version is None:
        raise StageFailed(f"batch: nothing is deployed to {env}; name a version with --version")
    if target.name != "local":
        return target.batch_job(str(version), source, output)
    from . import batch as batch_lib
    from . import model as model_lib

    inputs = batch_lib.input_files(source)
    with tempfile.TemporaryDirectory() as tmp:
        pipeline, meta = model_lib.load(target.fetch_model(str(version), Path(tmp)))
    with _progress() as advance:
        summary = batch_lib.score(pipeline, meta, inputs, output, config.batch_id_columns, {config.data.target},
                                  config.batch.chunk_rows, config.data.sep, advance)
    result = {"version": str(version), "output": output, "read": summary.read, "scored": summary.scored,
              "rejected": summary.rejected, "reject_rate": round(summary.reject_rate, 6),
              "rows_per_second": round(summary.read / summary.seconds) if summary.seconds else None,
              "reasons": summary.reasons}
    if summary.rejected:
        result["rejects"] = batch_lib.rejects_location(output)
    _write(root / ARTIFACTS / "batch.json", result)
    if summary.reject_rate > config.batch.max_reject_rate:
        top = "; ".join(f"{n} x {r}" for r, n in sorted(summary.reasons.items(), key=lambda kv: -kv[1])[:3])
        raise StageFailed(f"batch: {summary.rejected} of {summary.read} rows rejected ({summary.reject_rate:.2%} > "
                          f"batch.max_reject_rate {config.batch.max_reject_rate:.2%}): {top}. "
                          f"Rejects with their reasons: {result['rejects']}")
    return result


def _progress():
    """A live row count with rows/s on a terminal (rich), nothing elsewhere (CI logs)."""
    import contextlib
    import sys

    if not sys.stderr.isatty():
        return contextlib.nullcontext(lambda n: None)
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    @contextlib.contextmanager
    def bar():
        columns = (SpinnerColumn(), TextColumn("{task.completed:,.0f} rows"),
                   TextColumn("{task.fields[rate]} rows/s"), TimeElapsedColumn())
        with Progress(*columns, transient=False) as progress:
            task = progress.add_task("batch", total=None, rate="-")
            started = time.perf_counter()

            def advance(rows: int) -> None:
                done = progress.tasks[0].completed + rows
                progress.update(task, completed=done, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f}")

            yield advance

    return bar()


def _champion_trained_on(target: Target, fingerprint: str) -> str | None:
    """The champion's version when it was trained on data with this fingerprint, else None."""
    import tempfile

    champion = target.champion()
    if champion is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        folder = target.fetch_model(champion.version, Path(tmp))
        lineage = _read_optional(folder / "lineage.json") if folder is not None else None
    return champion.version if lineage and lineage.get("data_fingerprint") == fingerprint else None


def _write_baseline(config: Config, model_dir: Path, X_train, y_train) -> None:
    """The monitor's baseline, from the bundle's own schema and predictions (a managed training job
    leaves the same bundle)."""
    from . import model as model_lib
    from . import schema as schema_lib
    from .monitoring import baseline

    pipeline, meta = model_lib.load(model_dir)
    frame = schema_lib.coerce(X_train, meta["schema"])
    baseline.write(model_dir, frame, meta["schema"], pipeline.predict(frame), config.task, y_train,
                   seed=config.data.seed)


def skipped_for_no_new_data(root: Path) -> dict | None:
    """The marker `train --if-new-data` left when the data had not changed (None: go on)."""
    return _read_optional(root / ARTIFACTS / NO_NEW_DATA)


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
    image = target.serving_image()
    if image:
        lineage = {**lineage, "image": image}
    version = target.register(artifacts / "model", metrics, lineage, approved=approved)
    result = {"version": version.version, "status": version.status, "uri": version.uri}
    if image:
        result["image"] = image
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
              "schema": check, "schema_changes": changes, "monitoring": _setup_monitoring(target, env, deployment)}
    _write(root / ARTIFACTS / f"deployed-{env}.json", result)
    return result


def _setup_monitoring(target: Target, env: str, deployment) -> dict | str:
    """The platform's own monitor of the new deployment, from the training statistics of its version."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = target.fetch_model(deployment.version, Path(tmp))
        if folder is None or not (folder / "baseline.json").is_file():
            return f"not set up: version {deployment.version} has no baseline.json (trained before monitoring)"
        done = target.setup_monitoring(env, deployment.version, folder)
    return done if done is not None else "captured traffic, judged by `monitor`"


def monitor(config: Config, target: Target, root: Path, env: str, input_path: str | None = None) -> dict:
    """The verdict on `env`'s traffic (or on a file of rows, e.g. a batch input): the platform's own
    monitor's latest result where the target has one, else captured traffic against the baseline of
    the version serving. Writes artifacts/monitor/report.json and report.html; fails (exit 1) on
    drift or live quality below its bound, naming each feature or metric and by how much."""
    import dataclasses

    from .monitoring import html

    config.environment(env)
    result = None if input_path is not None else target.latest_monitor_result(env)
    if result is None:
        result = _judge_traffic(config, target, env, input_path)
    folder = root / ARTIFACTS / "monitor"
    _write(folder / "report.json", dataclasses.asdict(result))
    (folder / "report.html").write_text(html.render(result), encoding="utf-8")
    summary = {"env": env, "status": result.status, "version": result.version, "rows": result.rows,
               "window": result.window, "drifted": result.drifted, "report": str(folder / "report.html")}
    if result.quality:
        summary["quality"] = {k: result.quality.get(k) for k in ("metric", "value", "threshold", "rows")}
    if result.status in ("drift", "quality"):
        what = list(result.drifted)
        if result.quality and result.quality.get("passed") is False:
            q = result.quality
            what.append(f"live {q['metric']} {q['value']} {'>' if config.gate.lower_is_better else '<'} {q['threshold']:g}"
                        f" on {q['rows']} labelled rows")
        raise StageFailed(f"monitor: {env} ({result.window}, {result.rows} rows, version {result.version}): "
                          f"{'; '.join(what)}. Report: {folder / 'report.html'}")
    if result.notes:
        summary["notes"] = result.notes
    return summary


def _judge_traffic(config: Config, target: Target, env: str, input_path: str | None):
    import tempfile

    from .monitoring import traffic, verdict

    version = target.serving_version(env) or target.due_version(env)
    if version is None:
        raise StageFailed(f"monitor: nothing serves {env}; deploy first")
    with tempfile.TemporaryDirectory() as tmp:
        folder = target.fetch_model(version, Path(tmp))
        if folder is None:
            raise StageFailed(f"monitor: the {target.name} target cannot fetch version {version}'s baseline")
        base = verdict.load_baseline(folder)
        meta = json.loads((folder / "model.json").read_text())
        if input_path is not None:
            seen = traffic.from_file(input_path, meta["schema"], config.data.sep)
        else:
            capture = target.capture_dir(env)
            if capture is None:
                raise StageFailed(f"monitor: the {target.name} target has no monitor result and no captured traffic")
            window = config.monitoring.window
            seen = traffic.captured(capture, meta["schema"], window.hours, window.rows, version,
                                    with_keys=config.monitoring.ground_truth is not None)
        return verdict.compare(config, env, version, base, seen, meta, folder)


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
    result = {"version": promoted.version, "env": to_env, "status": promoted.status}
    if promoted.source:  # promoted across an account/subscription/project boundary: from where
        result["source"] = promoted.source
    _write(root / ARTIFACTS / "promoted.json", result)
    return result


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
