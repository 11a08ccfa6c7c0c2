"""What the user sees and keeps: live progress per step (rich), a summary table, and
`.local-ci/<provider>/report.json`."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

PASSED, FAILED, SKIPPED, WARNING, RUNNING, PENDING = "passed", "failed", "skipped", "warning", "running", "pending"
STYLE = {PASSED: "green", FAILED: "bold red", SKIPPED: "dim", WARNING: "yellow", RUNNING: "cyan", PENDING: "dim"}


@dataclass
class Step:
    """One row of the run: a CodeBuild command, an Azure step, a Cloud Build step."""

    name: str
    status: str = PENDING
    duration: float = 0.0
    log: str | None = None
    exit_code: int | None = None
    message: str = ""
    detail: dict = field(default_factory=dict)
    started: float | None = field(default=None, repr=False)
    last_line: str = field(default="", repr=False)

    def to_json(self) -> dict:
        data = asdict(self)
        data.pop("started")
        data.pop("last_line")
        data["duration"] = round(self.duration, 3)
        return data


class Reporter:
    """Thread-safe progress: steps register, start, print lines, finish."""

    def __init__(self, console: Console, provider: str, verbose: bool = False, mask=None):
        self.console = console
        self.provider = provider
        self.verbose = verbose
        self.mask = mask or (lambda text: text)  # every text shown passes through it (masking.Masker)
        self.steps: list[Step] = []
        self.lock = threading.Lock()
        self.live: Live | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self.console.is_terminal:
            self.live = Live(get_renderable=self._render, console=self.console, refresh_per_second=8,
                             transient=True)
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def note(self, text: str) -> None:
        self.console.print(Text(self.mask(f"[{self.provider}] {text}"), style="dim"))

    def add(self, name: str, **detail) -> Step:
        step = Step(name=self.mask(name), detail=detail)
        with self.lock:
            self.steps.append(step)
        return step

    def start(self, step: Step) -> None:
        step.status, step.started = RUNNING, time.monotonic()
        if self.live is None:
            self.console.print(Text(f"[{self.provider}] ▶ {step.name}", style="cyan"))

    def line(self, step: Step, text: str) -> None:
        text = self.mask(text.rstrip())
        step.last_line = text[-200:]
        if self.verbose:
            self.console.print(Text(f"  {step.name[:30]} │ {text}"), highlight=False)

    def finish(self, step: Step, status: str, exit_code: int | None = None, message: str = "") -> None:
        if step.started is not None:
            step.duration = time.monotonic() - step.started
        step.status, step.exit_code = status, exit_code
        if message:
            step.message = message = self.mask(message)
        if self.live is None or status != SKIPPED:
            line = f"[{self.provider}] {_mark(status)} {step.name} ({status}, {step.duration:.1f}s)"
            if message:
                line += f": {message}"
            self.console.print(Text(line, style=STYLE[status]))

    def skip(self, name: str, reason: str = "", **detail) -> Step:
        step = self.add(name, **detail)
        self.finish(step, SKIPPED, message=reason)
        return step

    # -- rendering -------------------------------------------------------------------------
    def _render(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        now = time.monotonic()
        with self.lock:
            steps = list(self.steps)
        for step in steps:
            seconds = step.duration if step.status not in (RUNNING,) else now - (step.started or now)
            tail = step.last_line if step.status == RUNNING else step.message
            table.add_row(Text(_mark(step.status), style=STYLE[step.status]), Text(step.name[:60]),
                          Text(f"{seconds:6.1f}s", style="dim"), Text(tail[:70], style="dim"))
        return table

    def summary(self, title: str, result: str) -> None:
        table = Table(title=f"{title}: {result}", title_style=STYLE[PASSED if result == "succeeded" else FAILED])
        table.add_column("step")
        table.add_column("status")
        table.add_column("seconds", justify="right")
        for step in self.steps:
            table.add_row(step.name[:80], Text(step.status, style=STYLE[step.status]), f"{step.duration:.1f}")
        self.console.print(table)
        for step in self.steps:
            if step.status == FAILED and step.log and Path(step.log).exists():
                tail = Path(step.log).read_text(errors="replace").splitlines()[-15:]
                self.console.print(Text(f"--- last lines of {step.name} ({step.log})", style="red"))
                for text in tail:
                    self.console.print(Text(text), highlight=False)


def _mark(status: str) -> str:
    return {PASSED: "✓", FAILED: "✗", SKIPPED: "–", WARNING: "!", RUNNING: "…", PENDING: "·"}[status]


def write_report(path: Path, data: dict, steps: list[Step], mask=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**data, "steps": [s.to_json() for s in steps]}
    text = json.dumps(payload, indent=2, default=str) + "\n"
    path.write_text(mask(text) if mask else text)
    return path
