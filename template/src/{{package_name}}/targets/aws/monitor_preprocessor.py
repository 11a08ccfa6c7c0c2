"""The record preprocessor of this project's SageMaker Model Monitor jobs.

The endpoint captures whole requests ({"instances": [...]}: rows by position, or objects by name);
Model Monitor compares columns. `preprocess_handler` turns one captured request into one record per
row, keyed by the feature names of baseline.csv, so live traffic and the baseline line up column by
column. Runs inside the Model Monitor analyzer container: standard library only, and no syntax newer
than its Python needs (no zip(strict=...), no match). `FEATURES` is
written in when deploy uploads this file (targets/aws/monitor.py).
"""

import base64
import json

FEATURES: list = []  # written in on upload


def rows(payload) -> list:
    """The rows of one request as {feature: value}; rows of the wrong shape (rejected requests) are left out."""
    instances = payload.get("instances") if isinstance(payload, dict) else payload
    records = []
    for row in instances if isinstance(instances, list) else []:
        if isinstance(row, dict) and all(name in row for name in FEATURES):
            records.append({name: row[name] for name in FEATURES})
        elif isinstance(row, list) and len(row) == len(FEATURES):
            records.append({name: row[i] for i, name in enumerate(FEATURES)})
    return records


def preprocess_handler(inference_record, logger=None):
    captured = inference_record.endpoint_input
    text = captured.data
    if str(getattr(captured, "encoding", "")).upper() == "BASE64":
        text = base64.b64decode(text).decode("utf-8")
    try:
        return rows(json.loads(text))
    except ValueError:
        return []
