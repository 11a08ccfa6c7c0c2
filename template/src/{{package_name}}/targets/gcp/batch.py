"""`batch --target gcp`: a Vertex AI batch prediction job on a registered model version, as typed
aiplatform_v1 requests, waited for.

Where the rows are. Input: Cloud Storage (a CSV, Parquet or JSON-lines file, or a folder of them) or a
BigQuery table (`bq://project.dataset.table`). Output: a Cloud Storage folder (`gs://bucket/scores/`: Vertex
AI writes JSON lines under `prediction-<model>-<time>/`) or BigQuery (`bq://project` or `bq://project.dataset`:
Vertex AI creates the table). A local path is refused: the job runs on Google's machines.

What the model receives. The prebuilt scikit-learn container predicts on arrays, by position, so the job
turns each row into the array of the version's features in the order of its model.json (instance_config:
`array` with `included_fields`). That order is explicit on purpose: with `excluded_fields` Vertex AI keeps the
other columns in the output, but takes the order from the table or leaves it unspecified for JSON objects, and
a wrong order scores every row silently wrong. The id column (batch.id_columns, at most one) is the job's
`key_field`: the output carries it as `key` next to `prediction`. The container calls predict() only: no
probability columns (the local engine adds them).

Bad rows. Cloud Storage input is checked before anything is submitted, row by row, by the local engine's
checks (batch.py): rejects go next to the output (`scores.rejects.jsonl`, with `_row` and `_reason`), the
stage fails without submitting when they exceed batch.max_reject_rate, and the job scores a staged copy of
the good rows (JSON lines in gs://<gcp.bucket>/batch/, typed as the model expects). A BigQuery table is not
read here (that would move the table through the build): the job's own counts judge it, rows the container
could not score (completion_stats.failed_count; reasons in the output's `prediction.errors_stats-*` files)
against the same rate.

The drift check of a scheduled batch (cloudbuild.yaml) runs `monitor --input` on a sample of the input:
`python -m <package>.targets.gcp.batch sample --out FILE` writes it (see `sample`).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from google.cloud import aiplatform_v1 as v1

from ... import batch as batch_lib
from ...errors import ConfigError, StageFailed

DONE = {v1.JobState.JOB_STATE_SUCCEEDED, v1.JobState.JOB_STATE_PARTIALLY_SUCCEEDED, v1.JobState.JOB_STATE_FAILED,
        v1.JobState.JOB_STATE_CANCELLED, v1.JobState.JOB_STATE_EXPIRED}
SCORED = {v1.JobState.JOB_STATE_SUCCEEDED, v1.JobState.JOB_STATE_PARTIALLY_SUCCEEDED}
POLL_SECONDS = 30


# -- where the rows are ------------------------------------------------------------------------------
def check_locations(source: str, output: str) -> None:
    """Exit 2 for what a Vertex AI job cannot read or write, naming --input / --output."""
    if source.startswith("bq://"):
        if source.removeprefix("bq://").count(".") != 2:
            raise ConfigError(f"--input {source}: a BigQuery input is bq://project.dataset.table")
    elif not source.startswith("gs://"):
        raise ConfigError(f"--input {source}: the gcp batch job reads Cloud Storage (gs://bucket/path) or "
                          "BigQuery (bq://project.dataset.table), not a local path; score a local file with "
                          "--target local")
    if output.startswith("bq://"):
        if output.removeprefix("bq://").count(".") > 1:
            raise ConfigError(f"--output {output}: a BigQuery output is bq://project or bq://project.dataset "
                              "(Vertex AI creates the table)")
    elif not output.startswith("gs://"):
        raise ConfigError(f"--output {output}: the gcp batch job writes to Cloud Storage (gs://bucket/folder/) "
                          "or BigQuery (bq://project.dataset), not a local path")
    elif Path(output).suffix.lower() in batch_lib.FORMATS:
        raise ConfigError(f"--output {output}: Vertex AI writes a folder of JSON-lines files; give a folder "
                          f"(e.g. {output.rsplit('.', 1)[0]}/)")


def rejects_uri(output: str, run_folder: str) -> str:
    """Next to a Cloud Storage output (gs://b/scores/ -> gs://b/scores.rejects.jsonl); with a BigQuery
    output, in the run's folder of the bucket."""
    if output.startswith("bq://"):
        return f"{run_folder}/rejects.jsonl"
    return batch_lib.rejects_location(output.rstrip("/") + ".jsonl")


def key_field(id_columns: list[str]) -> str:
    if len(id_columns) > 1:
        raise ConfigError(f"batch.id_columns {id_columns}: a Vertex AI batch job carries one key column into its "
                          "output (instance_config.key_field); name one (a row id) for --target gcp")
    return id_columns[0] if id_columns else ""


# -- the request -------------------------------------------------------------------------------------
def build_job(config, *, model: str, version: str, features: list[str], id_columns: list[str], source: str,
              source_format: str, output: str) -> v1.BatchPredictionJob:
    """The BatchPredictionJob for `model` (a versioned resource name, ...models/ID@VERSION)."""
    gcp, settings = config.gcp, config.gcp.batch
    if source.startswith("bq://"):
        input_config = v1.BatchPredictionJob.InputConfig(
            instances_format="bigquery", bigquery_source=v1.BigQuerySource(input_uri=source))
    else:
        input_config = v1.BatchPredictionJob.InputConfig(
            instances_format=source_format, gcs_source=v1.GcsSource(uris=[source]))
    if output.startswith("bq://"):
        output_config = v1.BatchPredictionJob.OutputConfig(
            predictions_format="bigquery", bigquery_destination=v1.BigQueryDestination(output_uri=output))
    else:
        output_config = v1.BatchPredictionJob.OutputConfig(
            predictions_format="jsonl", gcs_destination=v1.GcsDestination(output_uri_prefix=output))
    return v1.BatchPredictionJob(
        display_name=f"{config.model.name}-batch-v{version}",
        model=model,
        input_config=input_config,
        instance_config=v1.BatchPredictionJob.InstanceConfig(
            instance_type="array", included_fields=features, key_field=key_field(id_columns)),
        output_config=output_config,
        dedicated_resources=v1.BatchDedicatedResources(
            machine_spec=v1.MachineSpec(machine_type=settings.machine_type),
            starting_replica_count=settings.starting_replicas, max_replica_count=settings.max_replicas),
        manual_batch_tuning_parameters=v1.ManualBatchTuningParameters(batch_size=settings.batch_size),
        service_account=gcp.service_account,
        labels={"managed_by": "mlops-gen", "model_version": str(version)},
    )


# -- bad rows, before anything is submitted ----------------------------------------------------------
def stage_rows(config, schema: list[dict], source: str, staged: str, rejects: str) -> batch_lib.Summary:
    """Check every row of `source` as the local engine does: the good ones, typed, to `staged` (JSON
    lines: id columns and features), the others with `_row` and `_reason` to `rejects`."""
    ids = config.batch_id_columns
    allowed = {c["name"] for c in schema} | set(ids) | {config.data.target}
    summary, offset = batch_lib.Summary(), 0
    good, bad = batch_lib.Writer(staged, "jsonl"), batch_lib.Writer(rejects, "jsonl")
    try:
        for location in batch_lib.input_files(source):
            kind = batch_lib.FORMATS[Path(location).suffix.lower()]
            for frame in batch_lib.chunks(location, kind, config.batch.chunk_rows, config.data.sep, schema):
                frame.index = range(offset, offset + len(frame))
                offset += len(frame)
                missing = [c for c in ids if c not in frame.columns]
                if missing:
                    raise ConfigError(f"--input {location}: id column(s) {', '.join(missing)} missing (batch.id_columns)")
                typed, reasons = batch_lib.check(frame, schema, allowed)
                if len(typed):
                    extra = [c for c in ids if c not in typed.columns]
                    good.write(pd.concat([frame.loc[typed.index, extra], typed], axis=1))
                if len(reasons):
                    bad.write(frame.loc[reasons.index].astype(str).assign(_row=reasons.index, _reason=reasons.values))
                    for reason, count in reasons.value_counts().items():
                        summary.reasons[reason] = summary.reasons.get(reason, 0) + int(count)
                summary.read += len(frame)
                summary.scored += len(typed)
                summary.rejected += len(reasons)
        for writer in (good, bad):
            if writer.rows:
                writer.commit()
            else:
                writer.abort()
    except BaseException:
        good.abort()
        bad.abort()
        raise
    return summary


def _too_many(config, read: int, rejected: int, reasons: dict, where: str) -> None:
    rate = rejected / read if read else 0.0
    if rate > config.batch.max_reject_rate:
        top = "; ".join(f"{n} x {r}" for r, n in sorted(reasons.items(), key=lambda kv: -kv[1])[:3])
        raise StageFailed(f"batch: {rejected} of {read} rows rejected ({rate:.2%} > batch.max_reject_rate "
                          f"{config.batch.max_reject_rate:.2%}){': ' + top if top else ''}. {where}")


# -- the job -----------------------------------------------------------------------------------------
def wait(jobs, name: str, timeout_minutes: int, poll: float = POLL_SECONDS) -> v1.BatchPredictionJob:
    """The job once it ended; cancelled and failed after `timeout_minutes`."""
    deadline = time.monotonic() + timeout_minutes * 60
    while True:
        job = jobs.get_batch_prediction_job(name=name)
        if job.state in DONE:
            return job
        if time.monotonic() > deadline:
            jobs.cancel_batch_prediction_job(name=name)
            raise StageFailed(f"batch: Vertex AI job {name} did not finish within gcp.batch.timeout_minutes="
                              f"{timeout_minutes} ({job.state.name}); cancelled")
        time.sleep(poll)


def run(target, version: str, source: str, output: str) -> dict:
    """Check, stage, submit, wait, judge: the stage's summary (job, state, output, counts)."""
    config, gcp = target.config, target.gcp
    check_locations(source, output)
    key_field(config.batch_id_columns)
    model = target._version(version)
    with tempfile.TemporaryDirectory() as tmp:
        schema = json.loads((target.fetch_model(version, Path(tmp)) / "model.json").read_text())["schema"]
    result = {"version": str(version), "input": source, "output": output, "read": 0, "rejected": 0}
    reasons: dict[str, int] = {}
    job_input, job_format = source, "bigquery"
    if source.startswith("gs://"):
        job_input, job_format = _checked_copy(config, schema, source, output, result, reasons)
        if job_input is None:
            return {**result, "job": None, "state": "skipped: no row to score", "scored": 0}
    request = build_job(config, model=model.versioned_resource_name, version=version,
                        features=[c["name"] for c in schema], id_columns=config.batch_id_columns,
                        source=job_input, source_format=job_format, output=output)
    name = target.jobs.create_batch_prediction_job(
        parent=f"projects/{gcp.project_id}/locations/{gcp.region}", batch_prediction_job=request).name
    print(f"batch: Vertex AI job {name} submitted; waiting (at most {gcp.batch.timeout_minutes} min)", flush=True)
    job = wait(target.jobs, name, gcp.batch.timeout_minutes)
    result.update(job=name, state=job.state.name, console=_console(gcp, name))
    if job.state not in SCORED:
        raise StageFailed(f"batch: Vertex AI job {name} ended {job.state.name}: {job.error.message or 'no reason given'}")
    _count(job, result, reasons, counted_before=source.startswith("gs://"))
    _too_many(config, result["read"], result["rejected"], reasons, f"Vertex AI job {name}; its output: {result['output']}")
    return result


def _checked_copy(config, schema, source: str, output: str, result: dict, reasons: dict) -> tuple[str | None, str]:
    """The rows of a Cloud Storage input checked and staged (stage_rows): (staged URI or None when no row
    is left to score, its format). Fails before any job when too many rows were rejected."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    run_folder = f"gs://{config.gcp.bucket}/batch/{config.model.name}/{stamp}"
    rejects, staged = rejects_uri(output, run_folder), f"{run_folder}/instances.jsonl"
    summary = stage_rows(config, schema, source, staged, rejects)
    reasons.update(summary.reasons)
    result.update(read=summary.read, rejected=summary.rejected, staged_input=staged,
                  rejected_before_submit=summary.rejected)
    if summary.rejected:
        result["rejects"] = rejects
    _too_many(config, summary.read, summary.rejected, reasons,
              f"Nothing was submitted. Rejects with their reasons: {rejects}")
    return (staged if summary.scored else None), "jsonl"


def _count(job: v1.BatchPredictionJob, result: dict, reasons: dict, counted_before: bool) -> None:
    """The job's own counts into `result`: rows it could not score are rejects too."""
    stats = job.completion_stats
    failed = int(stats.failed_count) + max(int(stats.incomplete_count), 0)  # -1: unknown
    scored = int(stats.successful_count)
    read = result["read"] if counted_before else scored + failed
    rejected = result["rejected"] + failed
    result.update(output=job.output_info.gcs_output_directory or job.output_info.bigquery_output_dataset
                  or result["output"], scored=scored, failed_in_job=failed, rejected=rejected, read=read,
                  reject_rate=round(rejected / read, 6) if read else 0.0)
    if job.output_info.bigquery_output_table:
        result["table"] = job.output_info.bigquery_output_table
    if failed:
        reasons["the serving container could not score the row (prediction.errors_stats-* in the output)"] = failed


def _console(gcp, name: str) -> str:
    return (f"https://console.cloud.google.com/vertex-ai/locations/{gcp.region}/batch-predictions/"
            f"{name.rsplit('/', 1)[-1]}?project={gcp.project_id}")


# -- the drift check's sample ------------------------------------------------------------------------
def sample(source: str, rows: int, sep: str = ",", seed: int | None = None) -> pd.DataFrame:
    """A uniform sample of at most `rows` rows of `source` (files: streamed once, memory bounded by
    `rows` plus one chunk), or the first `rows` rows of a BigQuery table (tabledata.list: no query)."""
    if source.startswith("bq://"):
        from google.cloud import bigquery

        table = source.removeprefix("bq://")
        client = bigquery.Client(project=table.split(".")[0])
        return pd.DataFrame([dict(row.items()) for row in client.list_rows(table, max_results=rows)])
    rng, kept = np.random.default_rng(seed), None
    for location in batch_lib.input_files(source):
        kind = batch_lib.FORMATS[Path(location).suffix.lower()]
        for frame in batch_lib.chunks(location, kind, max(rows, 100), sep, []):
            frame = frame.assign(_u=rng.random(len(frame)))
            kept = (frame if kept is None else pd.concat([kept, frame], ignore_index=True)).nsmallest(rows, "_u")
    if kept is None:
        raise ConfigError(f"--input {source}: no rows")
    return kept.sort_index().drop(columns="_u")


def main(argv: list[str] | None = None) -> int:
    """python -m <package>.targets.gcp.batch sample --out FILE [--input URI] [--config mlops.yaml]"""
    from ...config import load

    parser = argparse.ArgumentParser(prog="batch", description="A sample of the batch input for `monitor --input`.")
    parser.add_argument("command", choices=["sample"])
    parser.add_argument("--out", type=Path, required=True, help="the CSV file to write")
    parser.add_argument("--input", help="default: batch.input of mlops.yaml")
    parser.add_argument("--config", type=Path, default=Path("mlops.yaml"))
    args = parser.parse_args(argv)
    try:
        config = load(args.config, deep=False)
        source = args.input or config.batch.input
        if not source:
            raise ConfigError("mlops.yaml: batch.input is empty: nothing to sample (set it, or give --input)")
        frame = sample(source, config.batch.chunk_rows, config.data.sep, seed=config.data.seed)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(args.out, index=False)
    print(f"batch input sample: {len(frame)} rows of {source} -> {args.out}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
