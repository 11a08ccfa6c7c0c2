"""`batch --target aws`: SageMaker Batch Transform on a registered model package version, S3 to S3.

Batch Transform hands the lines of CSV objects to the serving container as they are: it knows no
header, no column names and no bad rows. So the run has three steps, and only the middle one is the
job:

1. check, on this machine, streamed in chunks (batch.py's reader and row checks): each row of --input
   (an s3:// file or prefix; CSV, Parquet or JSON lines) is scored or goes to the rejects file next
   to --output with its reason. Above batch.max_reject_rate the run fails (exit 1) before any job
   starts. The good rows are staged in the artifact bucket as header-less CSV parts (one per chunk,
   so instances share the work): the id columns, then the features in the model's order. A value
   with a comma, quote or line break is rejected too: the job's CSV filters cannot carry it.
2. score: a SageMaker Model from the package version, and CreateTransformJob over the parts with
   SplitType Line + BatchStrategy MultiRecord (rows gathered into requests of up to
   aws.batch.max_payload_mb), Accept text/csv + AssembleWith Line (the container answers one line per
   row: prediction, class probabilities), and DataProcessing: InputFilter drops the id columns on the
   way in, JoinSource Input + OutputFilter put them back in front of the answer. Waited for up to
   aws.batch.timeout_seconds, then stopped; a failed job raises StageFailed with its FailureReason.
3. assemble: the job's lines become --output in its own format (.csv, .jsonl, .parquet; a header,
   the local engine's columns), and the staged objects are deleted.

Steps 1 and 3 stream every row through this machine once more than the job does; what they buy is
the same contract as the local target (rejects with reasons, the reject-rate gate, any input format,
one output file with named columns). `python -m <package>.targets.aws.batch sample --to PATH` draws
the rows a scheduled batch's drift check reads (buildspec.yml), from a URI `monitor --input` cannot
open.
"""

from __future__ import annotations

import io
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ... import batch as batch_lib
from ...errors import ConfigError, StageFailed
from ..base import ModelVersion

CSV_UNSAFE = r'[,"\r\n]'  # what a line of the job's CSV cannot hold unquoted
FILTER_MAX = 63  # DataProcessing.InputFilter / OutputFilter: at most 63 characters
RUNNING = ("InProgress", "Stopping")


def s3_location(location: str, flag: str) -> str:
    if not location.startswith("s3://") or len(location) <= len("s3://"):
        raise ConfigError(f"{flag} {location}: batch --target aws reads and writes S3; give an s3:// URI "
                          "(or run `batch --target local` for files on this machine)")
    return location


def data_processing(ids: int, features: int) -> dict | None:
    """The DataProcessing of a staged part (ids, then features): the model sees the features, the
    output line is the ids and then the container's answer."""
    if ids == 0:
        return None
    output = f"$[{','.join(str(i) for i in range(ids))},{ids + features}:]"
    if len(output) > FILTER_MAX:
        raise ConfigError(f"batch.id_columns: {ids} id columns make an OutputFilter longer than "
                          f"{FILTER_MAX} characters (SageMaker's limit); keep fewer")
    return {"InputFilter": f"$[{ids}:]", "JoinSource": "Input", "OutputFilter": output}


class BatchTransform:
    """One `batch --target aws` run: check and stage, transform job, assemble (the module docstring)."""

    def __init__(self, target) -> None:
        self.target, self.config, self.settings = target, target.config, target.config.aws.batch
        self.ids = list(self.config.batch_id_columns)

    # -- the run --------------------------------------------------------------------------------------
    def run(self, version: ModelVersion, source: str, output: str) -> dict:
        from .target import _stamp, resource_name

        s3_location(source, "--input")
        s3_location(output, "--output")
        out_kind = batch_lib.FORMATS.get(Path(output).suffix.lower())
        if out_kind is None:
            raise ConfigError(f"--output {output}: expected a .csv, .parquet or .jsonl name")
        if version.status == "Rejected":
            raise StageFailed(f"batch: version {version.version} of {self.target.group} is Rejected")
        started = time.perf_counter()
        meta = self._meta(version)
        job = resource_name(self.config.model.name, "batch", f"v{version.version}", _stamp())
        self.staging = self.target._key("batch", job)
        summary, parts = self._check_and_stage(source, output, out_kind, meta["schema"])
        result = {"version": version.version, "job": job, "output": output, "read": summary.read,
                  "scored": summary.scored, "rejected": summary.rejected,
                  "reject_rate": round(summary.reject_rate, 6), "reasons": summary.reasons}
        if summary.rejected:
            result["rejects"] = batch_lib.rejects_location(output)
        try:
            if summary.reject_rate > self.config.batch.max_reject_rate:
                result["state"] = "NotStarted"
                self._record(result)
                top = "; ".join(f"{n} x {r}" for r, n in sorted(summary.reasons.items(), key=lambda kv: -kv[1])[:3])
                raise StageFailed(
                    f"batch: {summary.rejected} of {summary.read} rows rejected ({summary.reject_rate:.2%} > "
                    f"batch.max_reject_rate {self.config.batch.max_reject_rate:.2%}): {top}. No transform job "
                    f"was started. Rejects with their reasons: {result['rejects']}")
            if parts:
                result["state"] = self._transform(job, version, len(meta["schema"]))
            else:
                result["state"] = "NotNeeded"  # no row to score: an empty output with the columns
            self._assemble(output, out_kind, meta, job, summary.scored)
        finally:
            self._delete_staged()
        result.update(instance_type=self.settings.instance_type, instance_count=self.settings.instance_count,
                      seconds=round(time.perf_counter() - started, 1))
        self._record(result)
        return result

    def _meta(self, version: ModelVersion) -> dict:
        """model.json of the version (schema, task, classes), read from its model.tar.gz."""
        with tempfile.TemporaryDirectory() as tmp:
            folder = self.target.fetch_model(version.version, Path(tmp))
            return json.loads((folder / "model.json").read_text())

    def _record(self, result: dict) -> None:
        path = self.target.root / "artifacts" / "batch.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=str))

    # -- 1. check and stage ------------------------------------------------------------------------------
    def _check_and_stage(self, source: str, output: str, out_kind: str, schema: list[dict]):
        allowed = {c["name"] for c in schema} | set(self.ids) | {self.config.data.target}
        categorical = [c["name"] for c in schema if c["kind"] != "numeric"]
        summary, parts, offset = batch_lib.Summary(), 0, 0
        rejects = batch_lib.Writer(batch_lib.rejects_location(output), out_kind)
        try:
            for location in batch_lib.input_files(source):
                kind = batch_lib.FORMATS[Path(location).suffix.lower()]
                for frame in batch_lib.chunks(location, kind, self.config.batch.chunk_rows,
                                              self.config.data.sep, schema):
                    frame.index = range(offset, offset + len(frame))
                    offset += len(frame)
                    missing = [c for c in self.ids if c not in frame.columns]
                    if missing:
                        raise ConfigError(f"--input {location}: id column(s) {', '.join(missing)} missing "
                                          "(batch.id_columns)")
                    typed, reasons = batch_lib.check(frame, schema, allowed)
                    typed, reasons = self._csv_safe(frame, typed, reasons, categorical)
                    if len(typed):
                        staged = pd.concat([frame.loc[typed.index, self.ids], typed], axis=1)
                        self._put(f"input/part-{parts:05d}.csv", staged.to_csv(header=False, index=False))
                        parts += 1
                    if len(reasons):
                        rejects.write(frame.loc[reasons.index].astype(str)
                                      .assign(_row=reasons.index, _reason=reasons.values))
                        for reason, count in reasons.value_counts().items():
                            summary.reasons[reason] = summary.reasons.get(reason, 0) + int(count)
                    summary.read += len(frame)
                    summary.scored += len(typed)
                    summary.rejected += len(reasons)
            if rejects.rows:
                rejects.commit()
            else:
                rejects.abort()
        except BaseException:
            rejects.abort()
            self._delete_staged()
            raise
        return summary, parts

    def _csv_safe(self, frame: pd.DataFrame, typed: pd.DataFrame, reasons: pd.Series, categorical: list[str]):
        """Rows whose id or category values a CSV line of the job cannot hold move to the rejects."""
        unsafe = pd.Series(None, index=typed.index, dtype=object)
        for name in [*self.ids, *categorical]:
            values = (frame.loc[typed.index, name] if name in self.ids else typed[name]).astype(str)
            hit = values.str.contains(CSV_UNSAFE, regex=True) & unsafe.isna()
            unsafe[hit] = f"column {name!r}: a comma, quote or line break, which Batch Transform's CSV cannot carry"
        bad = unsafe.notna()
        if not bad.any():
            return typed, reasons
        return typed[~bad], pd.concat([reasons, unsafe[bad]]).sort_index()

    # -- 2. the transform job -------------------------------------------------------------------------
    def _transform(self, job: str, version: ModelVersion, features: int) -> str:
        from .target import TAG_VERSION

        sagemaker = self.target.client("sagemaker")
        self.target.create_model(job, version, self.target._tags(**{TAG_VERSION: version.version}))
        try:
            request = {
                "TransformJobName": job,
                "ModelName": job,
                "BatchStrategy": "MultiRecord",
                "MaxPayloadInMB": self.settings.max_payload_mb,
                "TransformInput": {
                    "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": self._uri("input/")}},
                    "ContentType": "text/csv",
                    "SplitType": "Line",
                    "CompressionType": "None",
                },
                "TransformOutput": {"S3OutputPath": self._uri("output/"), "Accept": "text/csv",
                                    "AssembleWith": "Line"},
                "TransformResources": {"InstanceType": self.settings.instance_type,
                                       "InstanceCount": self.settings.instance_count},
                "Tags": self.target._tags(**{TAG_VERSION: version.version}),
            }
            processing = data_processing(len(self.ids), features)
            if processing:
                request["DataProcessing"] = processing
            sagemaker.create_transform_job(**request)
            described = self._wait(job)
        finally:
            sagemaker.delete_model(ModelName=job)
        status = described["TransformJobStatus"]
        if status in RUNNING:
            sagemaker.stop_transform_job(TransformJobName=job)
            raise StageFailed(f"batch: transform job {job} did not finish within aws.batch.timeout_seconds "
                              f"({self.settings.timeout_seconds}s); it has been stopped")
        if status != "Completed":
            raise StageFailed(f"batch: transform job {job} ended {status}: "
                              f"{described.get('FailureReason') or 'no reason given'}")
        return status

    def _wait(self, job: str) -> dict:
        from botocore.exceptions import WaiterError

        poll = self.target.poll_seconds
        attempts = max(1, int(self.settings.timeout_seconds / max(poll, 1)))
        sagemaker = self.target.client("sagemaker")
        try:
            sagemaker.get_waiter("transform_job_completed_or_stopped").wait(
                TransformJobName=job, WaiterConfig={"Delay": poll, "MaxAttempts": attempts})
        except WaiterError:
            pass  # failed, or still running at the timeout: the description says which
        return sagemaker.describe_transform_job(TransformJobName=job)

    # -- 3. assemble ----------------------------------------------------------------------------------
    def _assemble(self, output: str, out_kind: str, meta: dict, job: str, rows: int) -> None:
        """The job's output parts, in order, as one --output file with the local engine's columns;
        nothing is written unless the job answered exactly one line per staged row."""
        classes = meta.get("classes") if meta.get("task") == "classification" else None
        writer = batch_lib.Writer(output, out_kind)
        try:
            for key in sorted(self._keys("output/")):
                body = self.target.client("s3").get_object(Bucket=self.target.bucket(), Key=key)["Body"].read()
                if not body.strip():
                    continue
                frame = pd.read_csv(io.BytesIO(body), header=None)
                writer.write(frame.set_axis(self._columns(frame.shape[1], classes, key), axis=1))
            if writer.rows != rows:
                raise StageFailed(f"batch: transform job {job} returned {writer.rows} lines for {rows} rows")
            if writer.rows == 0:
                writer.write(pd.DataFrame({c: [] for c in [*self.ids, "prediction"]}))
            writer.commit()
        except BaseException:
            writer.abort()
            raise

    def _columns(self, width: int, classes: list | None, key: str) -> list[str]:
        answered = width - len(self.ids)
        if answered == 1:
            return [*self.ids, "prediction"]
        if classes and answered == 1 + len(classes):
            return [*self.ids, "prediction", *(f"proba_{c}" for c in classes)]
        raise StageFailed(f"batch: s3://{self.target.bucket()}/{key} has {width} columns; expected "
                          f"{len(self.ids)} id column(s), the prediction and {len(classes or [])} probabilities")

    # -- the staging area in the artifact bucket ----------------------------------------------------------
    def _uri(self, name: str) -> str:
        return f"s3://{self.target.bucket()}/{self.staging}/{name}"

    def _put(self, name: str, text: str) -> None:
        self.target.client("s3").put_object(Bucket=self.target.bucket(), Key=f"{self.staging}/{name}",
                                             Body=text.encode())

    def _keys(self, name: str = "") -> list[str]:
        pages = self.target.client("s3").get_paginator("list_objects_v2").paginate(
            Bucket=self.target.bucket(), Prefix=f"{self.staging}/{name}")
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def _delete_staged(self) -> None:
        """The staged copy of the input and the job's raw output: the data lives in --input/--output."""
        keys = self._keys()
        for start in range(0, len(keys), 1000):
            self.target.client("s3").delete_objects(
                Bucket=self.target.bucket(),
                Delete={"Objects": [{"Key": k} for k in keys[start:start + 1000]], "Quiet": True})


# -- the rows a scheduled batch's drift check reads ---------------------------------------------------
def sample(config, source: str, rows: int) -> pd.DataFrame:
    """A uniform sample of at most `rows` rows of `source` (file or prefix, local or URI), streamed:
    each chunk's rows get a random key and the `rows` smallest keys are kept (seeded: data.seed)."""
    rng = np.random.default_rng(config.data.seed)
    kept = None
    for location in batch_lib.input_files(source):
        kind = batch_lib.FORMATS[Path(location).suffix.lower()]
        for frame in batch_lib.chunks(location, kind, config.batch.chunk_rows, config.data.sep, []):
            frame = frame.assign(_key=rng.random(len(frame)))
            kept = frame if kept is None else pd.concat([kept, frame], ignore_index=True)
            kept = kept.nsmallest(rows, "_key")
    if kept is None:
        raise ConfigError(f"--input {source}: no rows")
    return kept.drop(columns="_key")


def main(argv: list[str]) -> int:
    """`sample --to PATH [--rows N] [--input URI] [--config mlops.yaml]`: batch.input's sample as CSV."""
    import argparse

    from ...config import load

    parser = argparse.ArgumentParser(prog=f"python -m {__name__}")
    parser.add_argument("command", choices=["sample"])
    parser.add_argument("--to", required=True, help="the CSV file to write (monitor --input reads it)")
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--input", help="default: batch.input of mlops.yaml")
    parser.add_argument("--config", default="mlops.yaml")
    args = parser.parse_args(argv)
    try:
        config = load(args.config, deep=False)
        source = args.input or config.batch.input
        if not source:
            raise ConfigError("batch.input: empty; give --input")
        drawn = sample(config, source, args.rows)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    Path(args.to).parent.mkdir(parents=True, exist_ok=True)
    drawn.to_csv(args.to, index=False, sep=config.data.sep)
    print(f"sample: {len(drawn)} rows of {source} -> {args.to}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
