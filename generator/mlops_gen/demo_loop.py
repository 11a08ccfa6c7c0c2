"""The operate part of `make demo`: normal traffic -> `monitor` passes; shifted traffic -> `monitor`
fails naming the shifted features and pointing at its HTML report; the drift alarm's retrain finds no
new data; a retrain through the gate deploys the next version.

Traffic is the training sample the model bundle carries (artifacts/model/baseline.csv), sent over
HTTP like any client would; "shifted" moves two numeric features by three standard deviations.
"""

from __future__ import annotations

import csv
import json
import random
import statistics
import urllib.request
from collections.abc import Callable
from pathlib import Path

import click

SHIFTED_FEATURES = 2


def _rows(dest: Path) -> tuple[list[str], list[list]]:
    with open(dest / "artifacts" / "model" / "baseline.csv", newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        names = next(reader)
        return names, [[_value(v) for v in row] for row in reader]


def _value(text: str):
    try:
        return float(text)
    except ValueError:
        return text or None


def _shift(names: list[str], rows: list[list]) -> tuple[list[list], list[str]]:
    numeric = [i for i in range(len(names)) if all(isinstance(r[i], float) for r in rows)][-SHIFTED_FEATURES:]
    moved = [list(r) for r in rows]
    for i in numeric:
        spread = statistics.pstdev(r[i] for r in rows) or 1.0
        for row in moved:
            row[i] += 3 * spread
    return moved, [names[i] for i in numeric]


def _send(url: str, rows: list[list], count: int, seed: int) -> None:
    picked = random.Random(seed).choices(rows, k=count)
    for start in range(0, count, 50):
        body = json.dumps({"instances": picked[start:start + 50]}).encode()
        request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            response.read()


def operate(dest: Path, url: str, stage: Callable[..., int]) -> dict[str, str]:
    """Run the loop; `stage(args, expect)` runs `python -m <pkg> ARGS` in dest, exiting unless it
    ends with `expect`. Returns what to show in the summary."""
    names, rows = _rows(dest)
    click.secho("\nOperate: capture -> monitor -> drift -> retrain", bold=True)
    click.echo(f"sending 300 rows like the training data to {url}")
    _send(url, rows, 300, seed=1)
    stage(["monitor"], expect=0)
    shifted, moved = _shift(names, rows)
    click.echo(f"sending 600 rows with {', '.join(moved)} shifted by three standard deviations")
    _send(url, shifted, 600, seed=2)
    stage(["monitor"], expect=1)
    click.echo("monitor said drift (exit 1): the alarm starts a retrain, which first checks for new data")
    stage(["train", "--if-new-data"], expect=0)
    click.echo("no new data, nothing deployed; a retrain that a person asks for runs through the gate:")
    stage(["pipeline"], expect=0)
    report = dest / "artifacts" / "monitor" / "report.html"
    return {"drifted": ", ".join(moved), "report": str(report)}
