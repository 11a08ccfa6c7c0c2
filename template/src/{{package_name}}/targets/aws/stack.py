"""The parameters of infra/aws/pipeline.yaml that mlops.yaml decides, so the stack and the stages read
one configuration: who alarms reach, when to retrain, where new data lands, the latency bound, when
the scheduled batch runs and which S3 folders it may read and write.

    eval "set -- $(python -m <package>.targets.aws.stack)"
    aws cloudformation deploy ... --parameter-overrides FullRepositoryId=OWNER/REPO "$@"

prints shell-quoted Key=Value words (`--json`: a JSON object). Exit 2 with the key named when
mlops.yaml is wrong or a value cannot be said in AWS's terms (e.g. a cron AWS cannot express).
"""

from __future__ import annotations

import json
import shlex
import sys

from ...config import Config
from ...errors import ConfigError
from .schedule import aws_cron


def data_location(source: str) -> tuple[str, str]:
    """(bucket, key prefix) of an s3:// data.source; ('', '') for any other source (no data trigger)."""
    if not source.startswith("s3://"):
        return "", ""
    bucket, _, key = source.removeprefix("s3://").partition("/")
    return bucket, key


def output_folder(output: str | None) -> tuple[str, str]:
    """(bucket, key prefix) of the folder an s3:// batch output lands in (its rejects file sits beside it)."""
    bucket, prefix = data_location(output or "")
    return bucket, prefix.rpartition("/")[0] + "/" if "/" in prefix else ""


def parameters(config: Config) -> dict[str, str]:
    schedule, batch = config.monitoring.retrain_schedule, config.batch
    bucket, prefix = data_location(config.data.source)
    batch_in, batch_out = data_location(batch.input or ""), output_folder(batch.output)
    scheduled = bool(batch.schedule and batch_in[0] and batch_out[0])
    if batch.schedule and not scheduled:
        raise ConfigError("mlops.yaml: batch.input / batch.output: a scheduled batch on AWS reads and writes "
                          f"S3; give s3:// URIs (now: {batch.input}, {batch.output})")
    return {
        "ModelName": config.model.name,
        "AlertEmail": config.alerts.email,
        "RetrainSchedule": aws_cron(schedule) if schedule else "",
        "DataBucket": bucket,
        "DataPrefix": prefix,
        "P99LatencyMicroseconds": str(int(config.smoke.max_latency_ms * 1000)),
        "BatchSchedule": aws_cron(batch.schedule, "batch.schedule") if scheduled else "",
        "BatchInputBucket": batch_in[0] if scheduled else "",
        "BatchInputPrefix": batch_in[1] if scheduled else "",
        "BatchOutputBucket": batch_out[0] if scheduled else "",
        "BatchOutputPrefix": batch_out[1] if scheduled else "",
    }


def main(argv: list[str]) -> int:
    from ...config import load

    path = next((a for a in argv if not a.startswith("--")), "mlops.yaml")
    try:
        values = parameters(load(path, deep=False))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(values, indent=2) if "--json" in argv else " ".join(shlex.quote(f"{k}={v}") for k, v in values.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
