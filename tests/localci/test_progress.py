"""Progress when the output is not a terminal (CI logs, pipes): a heartbeat line per running
step, lines and tables never cut at rich's assumed 80 columns; and the same for `fleet`."""

from __future__ import annotations

import io
import re
import threading
import time
from types import SimpleNamespace

import pytest
from rich.console import Console

from mlops_gen.fleet.report import progress
from mlops_gen.localci.report import FAILED, PASSED, Reporter, elapsed, one_line

from .conftest import make_repo

HEARTBEAT = re.compile(r"^\[aws\] … unit-tests \(running, (\d+\.\d) s\): (.*)$")


def pipe_console(width: int = 80) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, highlight=False)
    assert not console.is_terminal
    return console, buffer


def test_heartbeat_names_running_step_elapsed_time_and_last_line():
    console, buffer = pipe_console()
    reporter = Reporter(console, "aws", heartbeat=0.2)
    with reporter:
        step = reporter.add("unit-tests")
        reporter.start(step)
        for n in range(10):  # a step that runs 1 s and prints now and then
            reporter.line(step, f"\x1b[32mcollected test {n}\x1b[0m   of   10\n")
            time.sleep(0.1)
        reporter.line(step, "\n")  # a blank line keeps the last line that said something
        reporter.finish(step, PASSED, 0)
        time.sleep(0.5)  # no heartbeat for a finished step
    lines = buffer.getvalue().splitlines()
    beats = [m for line in lines if (m := HEARTBEAT.match(line))]
    assert len(beats) >= 3, lines
    seconds = [float(m.group(1)) for m in beats]
    assert seconds == sorted(seconds) and seconds[-1] >= 0.6
    assert all(re.fullmatch(r"collected test \d of 10", m.group(2)) for m in beats), lines
    assert lines[0] == "[aws] ▶ unit-tests"
    assert lines[-1].startswith("[aws] ✓ unit-tests (passed, 1.")
    assert not any(HEARTBEAT.match(line) for line in lines[lines.index(lines[-1]):])


def test_heartbeat_at_most_every_interval_per_step_and_quiet_when_verbose_lines_show():
    console, buffer = pipe_console()
    reporter = Reporter(console, "aws", heartbeat=0.2, verbose=True)
    with reporter:
        step = reporter.add("unit-tests")
        reporter.start(step)
        for n in range(8):
            reporter.line(step, f"line {n}")
            time.sleep(0.05)
        reporter.finish(step, PASSED, 0)
    assert not [line for line in buffer.getvalue().splitlines() if HEARTBEAT.match(line)]

    reporter = Reporter(console, "aws", heartbeat=10)
    step = reporter.add("unit-tests")
    reporter.start(step)
    start = step.started
    assert reporter.pulse(start + 9) == 0
    assert reporter.pulse(start + 10) == 1
    assert reporter.pulse(start + 15) == 0  # 5 s after the last one
    assert reporter.pulse(start + 20) == 1
    assert reporter.heartbeat_line(step, start + 40) == "[aws] … unit-tests (running, 40 s)"


def test_no_heartbeat_thread_on_a_terminal():
    console = Console(file=io.StringIO(), force_terminal=True, width=80)
    reporter = Reporter(console, "aws", heartbeat=0.05)
    before = threading.active_count()
    with reporter:
        assert reporter.live is not None
        assert threading.active_count() <= before + 1  # Live's refresh thread only


def test_activity_gets_heartbeats_but_no_summary_row():
    console, buffer = pipe_console()
    reporter = Reporter(console, "aws", heartbeat=0.2)
    with reporter, reporter.activity("python environment"):
        time.sleep(0.7)
    assert "[aws] … python environment (running, 0." in buffer.getvalue()
    assert reporter.steps == []


def test_summary_keeps_a_120_character_step_name_whole_in_80_columns():
    console, buffer = pipe_console(80)
    reporter = Reporter(console, "aws")
    long_name = "build: python -m pytest -q tests/test_training_pipeline_end_to_end.py --maxfail=1 --durations=10 -k 'not slow [x]'"
    long_name += "z" * (120 - len(long_name))
    assert len(long_name) == 120
    step = reporter.add(long_name)
    reporter.start(step)
    reporter.finish(step, PASSED, 0)
    failing = reporter.add("post_build: exit 3")
    reporter.start(failing)
    reporter.finish(failing, FAILED, 3, "exit status 3")
    buffer.truncate(0)
    buffer.seek(0)
    reporter.summary("AWS CodeBuild buildspec.yml", "failed")
    out = buffer.getvalue()
    row = next(line for line in out.splitlines() if long_name in line)
    assert "passed" in row
    assert "…" not in out
    assert "\x1b[" not in out  # no colour codes in a log


def test_progress_lines_are_not_wrapped_at_80_columns():
    console, buffer = pipe_console(80)
    reporter = Reporter(console, "aws")
    name = "install: " + " ".join(["pip install --no-cache-dir -r requirements-dev.txt"] * 3)
    step = reporter.add(name)
    reporter.start(step)
    reporter.finish(step, FAILED, 1, "exit status 1")
    assert buffer.getvalue().splitlines() == [f"[aws] ▶ {name}", f"[aws] ✗ {name} (failed, 0.0s): exit status 1"]


def test_elapsed_and_one_line():
    assert elapsed(0.44) == "0.4 s"
    assert elapsed(40.2) == "40 s"
    assert elapsed(125) == "2 min 05 s"
    assert one_line("50%\r75%\r100% done\n") == "100% done"
    assert one_line("x" * 300, 20) == "x" * 19 + "…"


@pytest.mark.xdist_group("localci")
def test_ci_run_without_a_terminal_prints_whole_table(tmp_path, run_ci):
    long = "Run the unit tests of the training pipeline, the serving app and the deployment targets " * 2
    repo = make_repo(tmp_path / "r", {"azure-pipelines.yml": f"""
        steps:
          - script: echo tests ran
            displayName: {long.strip()}
        """})
    r = run_ci(repo, "azure")
    assert r.code == 0, r.output
    name = r.report["steps"][0]["name"]
    assert len(name) >= 70  # the runner's own label: longer than an 80-column table leaves for it
    rows = [line for line in r.output.splitlines() if line.startswith("│")]
    assert any(name in line and "passed" in line for line in rows), r.output
    assert f"✓ {name} (passed" in r.output


def test_fleet_progress_without_a_terminal_prints_each_repository_and_a_heartbeat():
    console, buffer = pipe_console()
    with progress(console, 3, "Updating", workers=2, heartbeat_every=0.2) as advance:
        advance(SimpleNamespace(path="/repos/alpha", status="updated", reason=""))
        time.sleep(0.5)
        advance(SimpleNamespace(path="/repos/beta", status="failed", reason="dirty working tree:\n  M a.py"))
        advance(SimpleNamespace(path="/repos/gamma", status="up-to-date", reason=""))
    lines = buffer.getvalue().splitlines()
    assert re.fullmatch(r"\[fleet\] 1/3 /repos/alpha: updated \(0\.\d s\)", lines[0]), lines
    assert any(re.fullmatch(r"\[fleet\] Updating: 1/3 done, 2 running, 0 waiting \(0\.\d s\)", line)
               for line in lines), lines
    assert any(re.fullmatch(r"\[fleet\] 2/3 /repos/beta: failed \(0\.\d s\): dirty working tree: M a.py", line)
               for line in lines), lines
    assert lines[-1].startswith("[fleet] 3/3 /repos/gamma: up-to-date")
