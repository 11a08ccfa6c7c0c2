"""The parameters of infra/aws/pipeline.yaml that mlops.yaml decides, so the stack and the stages read
one configuration: who alarms reach, when to retrain, where new data lands, the latency bound.

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


def parameters(config: Config) -> dict[str, str]:
    schedule = config.monitoring.retrain_schedule
    bucket, prefix = data_location(config.data.source)
    return {
        "ModelName": config.model.name,
        "AlertEmail": config.alerts.email,
        "RetrainSchedule": aws_cron(schedule) if schedule else "",
        "DataBucket": bucket,
        "DataPrefix": prefix,
        "P99LatencyMicroseconds": str(int(config.smoke.max_latency_ms * 1000)),
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
