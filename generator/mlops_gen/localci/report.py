"""What the user sees and keeps: live progress per step (rich Live on a terminal; plain lines and
a heartbeat every few seconds otherwise, e.g. in CI logs and pipes), a summary table that is never
cut when the output is not a terminal, and `.local-ci/<provider>/report.json`."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Self

from rich.console import Console, RenderableType
from rich.live import Live
from rich.measure import Measurement
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

PASSED, FAILED, SKIPPED, WARNING, RUNNING, PENDING = "passed", "failed", "skipped", "warning", "running", "pending"
STYLE = {PASSED: "green", FAILED: "bold red", SKIPPED: "dim", WARNING: "yellow", RUNNING: "cyan", PENDING: "dim"}
HEARTBEAT = 10.0  # seconds between two progress lines of a running step when the output is not a terminal
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")


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


def elapsed(seconds: float) -> str:
    """`0.4 s`, `40 s`, `2 min 05 s`: short enough for a progress line, exact enough to see it move."""
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def one_line(text: str, limit: int = 120) -> str:
    """The last visible state of an output line: no colour codes, no carriage-return history,
    whitespace collapsed, at most `limit` characters."""
    text = _ANSI.sub("", text).rstrip("\r\n").split("\r")[-1]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def say(console: Console, text: Text | str, **kwargs) -> None:
    """A progress line; whole (not wrapped at 80 columns) when the output is not a terminal."""
    console.print(text, soft_wrap=not console.is_terminal, highlight=False, **kwargs)


def print_wide(console: Console, renderable: RenderableType) -> None:
    """Print a table; when the output is not a terminal (CI log, pipe, file), as wide as its
    content needs instead of the 80 columns rich assumes there, so no cell is wrapped or cut."""
    if console.is_terminal:
        console.print(renderable)
        return
    options = console.options.update_width(100_000)
    width = max(console.width, Measurement.get(console, options, renderable).maximum)
    lines = console.render_lines(renderable, options.update_width(width), pad=False)
    segments: list[Segment] = []
    for line in lines:
        segments.extend(line)
        segments.append(Segment.line())
    console.print(Segments(_rstrip(segments)), soft_wrap=True, end="")


def _rstrip(segments: list[Segment]) -> list[Segment]:
    """Trailing blanks of each line removed (a padded table cell would otherwise end every line)."""
    out: list[Segment] = []
    line: list[Segment] = []
    for segment in segments:
        if segment.text == "\n":
            while line and not line[-1].control and not line[-1].text.strip():
                line.pop()
            if line and not line[-1].control:
                last = line[-1]
                line[-1] = Segment(last.text.rstrip(), last.style)
            out.extend(line)
            out.append(segment)
            line = []
        else:
            line.append(segment)
    return out + line


@contextmanager
def heartbeat(beat: Callable[[float], None], interval: float) -> Iterator[None]:
    """Call `beat(now)` from a background thread about every `interval / 4` seconds (at most
    every second) until the block ends; `beat` decides whether something is due. No thread
    when `interval` is 0 or less."""
    if not interval or interval <= 0:
        yield
        return
    stop = threading.Event()
    tick = min(1.0, interval / 4)

    def loop() -> None:
        while not stop.wait(tick):
            try:
                beat(time.monotonic())
            except Exception:  # a progress line must never end the run
                pass

    thread = threading.Thread(target=loop, name="mlops-gen-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)


class Reporter:
    """Thread-safe progress: steps register, start, print lines, finish.

    On a terminal a rich Live table shows every step. Otherwise each start and finish is one
    line, and while a step runs a heartbeat line names it with its elapsed time and its last
    output line every `heartbeat` seconds (10 s by default), so a CI log never goes quiet.
    """

    def __init__(self, console: Console, provider: str, verbose: bool = False, mask=None,
                 heartbeat: float = HEARTBEAT):
        self.console = console
        self.provider = provider
        self.verbose = verbose
        self.mask = mask or (lambda text: text)  # every text shown passes through it (masking.Masker)
        self.heartbeat = heartbeat
        self.steps: list[Step] = []
        self.lock = threading.Lock()
        self.live: Live | None = None
        self._activities: list[Step] = []  # running work that is no step of the report (environment set-up)
        self._shown: dict[int, float] = {}  # id(step) -> when its progress was last printed
        self._beating = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Self:
        if self.console.is_terminal:
            self.live = Live(get_renderable=self._render, console=self.console, refresh_per_second=8,
                             transient=True)
            self.live.__enter__()
        else:
            self._beating = heartbeat(self.pulse, self.heartbeat)
            self._beating.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._beating is not None:
            self._beating.__exit__(None, None, None)
            self._beating = None
        if self.live is not None:
            self.live.__exit__(*exc)
            self.live = None

    def note(self, text: str) -> None:
        say(self.console, Text(self.mask(f"[{self.provider}] {text}"), style="dim"))

    def add(self, name: str, **detail) -> Step:
        step = Step(name=self.mask(name), detail=detail)
        with self.lock:
            self.steps.append(step)
        return step

    def start(self, step: Step) -> None:
        step.status, step.started = RUNNING, time.monotonic()
        with self.lock:
            self._shown[id(step)] = step.started
        if self.live is None:
            say(self.console, Text(f"[{self.provider}] ▶ {step.name}", style="cyan"))

    def line(self, step: Step, text: str) -> None:
        text = self.mask(text.rstrip())
        if text.strip():  # a blank line leaves the last line that said something
            step.last_line = text[-200:]
        if self.verbose:
            with self.lock:
                self._shown[id(step)] = time.monotonic()
            say(self.console, Text(f"  {step.name[:30]} │ {text}"))

    def finish(self, step: Step, status: str, exit_code: int | None = None, message: str = "") -> None:
        if step.started is not None:
            step.duration = time.monotonic() - step.started
        step.status, step.exit_code = status, exit_code
        with self.lock:
            self._shown.pop(id(step), None)
        if message:
            step.message = message = self.mask(message)
        if self.live is None or status != SKIPPED:
            line = f"[{self.provider}] {_mark(status)} {step.name} ({status}, {step.duration:.1f}s)"
            if message:
                line += f": {message}"
            say(self.console, Text(line, style=STYLE[status]))

    def skip(self, name: str, reason: str = "", **detail) -> Step:
        step = self.add(name, **detail)
        self.finish(step, SKIPPED, message=reason)
        return step

    @contextmanager
    def activity(self, name: str) -> Iterator[Step]:
        """Long work outside the CI file's steps (e.g. building the python environment): shown
        and given heartbeats like a step, but no row of the summary or the report."""
        step = Step(name=self.mask(name), status=RUNNING, started=time.monotonic())
        with self.lock:
            self._activities.append(step)
            self._shown[id(step)] = step.started
        try:
            yield step
        finally:
            step.status, step.duration = PASSED, time.monotonic() - step.started
            with self.lock:
                self._activities.remove(step)
                self._shown.pop(id(step), None)

    # -- heartbeat (not a terminal) --------------------------------------------------------
    def heartbeat_line(self, step: Step, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        line = f"[{self.provider}] {_mark(RUNNING)} {step.name} (running, {elapsed(now - (step.started or now))})"
        last = one_line(step.last_line)
        return f"{line}: {last}" if last else line

    def pulse(self, now: float | None = None) -> int:
        """Print a heartbeat line for every running step that showed nothing for `heartbeat`
        seconds; returns how many were printed. Called by the background thread."""
        now = time.monotonic() if now is None else now
        due = []
        with self.lock:
            for step in (*self.steps, *self._activities):
                if step.status != RUNNING or step.started is None:
                    continue
                if now - self._shown.get(id(step), step.started) >= self.heartbeat * 0.999:
                    self._shown[id(step)] = now
                    due.append(step)
        for step in due:
            say(self.console, Text(self.heartbeat_line(step, now), style="cyan"))
        return len(due)

    # -- rendering -------------------------------------------------------------------------
    def _render(self) -> Table:
        table = Table(box=None, show_header=False, pad_edge=False)
        now = time.monotonic()
        with self.lock:
            steps = [*self.steps, *self._activities]
        for step in steps:
            seconds = step.duration if step.status not in (RUNNING,) else now - (step.started or now)
            tail = one_line(step.last_line, 70) if step.status == RUNNING else step.message
            table.add_row(Text(_mark(step.status), style=STYLE[step.status]), Text(step.name[:60]),
                          Text(f"{seconds:6.1f}s", style="dim"), Text(tail[:70], style="dim"))
        return table

    def summary(self, title: str, result: str) -> None:
        table = Table(title=f"{title}: {result}", title_style=STYLE[PASSED if result == "succeeded" else FAILED])
        table.add_column("step", overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("seconds", justify="right", no_wrap=True)
        for step in self.steps:
            table.add_row(Text(step.name), Text(step.status, style=STYLE[step.status]), f"{step.duration:.1f}")
        print_wide(self.console, table)
        for step in self.steps:
            if step.status == FAILED and step.log and Path(step.log).exists():
                tail = Path(step.log).read_text(errors="replace").splitlines()[-15:]
                say(self.console, Text(f"--- last lines of {step.name} ({step.log})", style="red"))
                for text in tail:
                    say(self.console, Text(text))


def _mark(status: str) -> str:
    return {PASSED: "✓", FAILED: "✗", SKIPPED: "–", WARNING: "!", RUNNING: "…", PENDING: "·"}[status]


def write_report(path: Path, data: dict, steps: list[Step], mask=None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {**data, "steps": [s.to_json() for s in steps]}
    text = json.dumps(payload, indent=2, default=str) + "\n"
    path.write_text(mask(text) if mask else text)
    return path
