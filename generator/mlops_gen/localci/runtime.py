"""What every provider's runner shares: the run context and running one logged process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .events import Trigger
from .masking import MaskedLog, Masker
from .report import Reporter, Step
from .workspace import GitInfo

_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass
class Context:
    provider: str
    repo: Path  # the user's repository (only .local-ci/ is written there)
    workspace: Path  # the private copy the build runs in
    out_dir: Path  # <repo>/.local-ci/<provider>
    env: dict[str, str]  # base environment of every step (scrubbed, venv first on PATH)
    git: GitInfo
    reporter: Reporter
    run_id: str
    variables: dict[str, str] = field(default_factory=dict)  # --var, in order
    secrets: dict = field(default_factory=dict)  # --secrets file
    image_map: dict[str, str] = field(default_factory=dict)  # --map-image
    python: str = "python3"  # the run's interpreter
    explicit: set[str] = field(default_factory=set)  # variable names given with --var
    mask: Masker = field(default_factory=Masker)  # secret values, masked in every output
    trigger: Trigger = field(default_factory=lambda: Trigger("push", "default"))  # what started the build
    _counter: int = 0

    @property
    def logs_dir(self) -> Path:
        return self.out_dir / "logs"

    def log_path(self, name: str) -> Path:
        self._counter += 1
        self.logs_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        return self.logs_dir / f"{self._counter:03d}-{_SAFE.sub('_', name).strip('_')[:60] or 'step'}.log"

    def new_step(self, name: str, **detail) -> Step:
        step = self.reporter.add(name, **detail)
        step.log = str(self.log_path(name))
        return step

    def open_log(self, step: Step, mode: str = "a") -> MaskedLog:
        return MaskedLog(step.log, self.mask, mode)


def run_logged(argv: list[str], *, cwd: Path, env: dict[str, str], step: Step, reporter: Reporter,
               on_line=None, timeout: float | None = None, header: str = "",
               stderr_seen: list | None = None, mask: Masker | None = None) -> int:
    """Run `argv`, streaming stdout+stderr into the step's log and the progress display.

    Returns the exit status (124 on timeout, as `timeout(1)` does). The process gets its own
    session so a timeout can end its whole group. With `stderr_seen` (a list), stderr is read
    as its own stream and a line is appended to the list for every line written on it.
    """
    with MaskedLog(step.log, mask or Masker()) as log:
        if header:
            log.write(header.rstrip("\n") + "\n")
            log.flush()
        split = stderr_seen is not None
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE if split else subprocess.STDOUT, start_new_session=True)
        lock = threading.Lock()

        def pump(stream, is_err: bool) -> None:
            for raw in stream:
                text = raw.decode("utf-8", errors="replace")
                if on_line is not None:  # first: a line that marks a value secret masks itself
                    on_line(text.rstrip("\r\n"))
                with lock:
                    log.write(text)
                    log.flush()
                    if is_err:
                        stderr_seen.append(text)
                reporter.line(step, text)

        err_thread = None
        if split:
            err_thread = threading.Thread(target=pump, args=(proc.stderr, True), daemon=True)
            err_thread.start()
        timed_out = threading.Event()
        timer = None
        if timeout:
            def expire() -> None:
                timed_out.set()
                _kill_group(proc)
            timer = threading.Timer(timeout, expire)
            timer.daemon = True
            timer.start()
        try:
            pump(proc.stdout, False)
            if err_thread is not None:
                err_thread.join()
            rc = proc.wait()
        finally:
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()
        if timer is not None:
            timer.cancel()
        if timed_out.is_set():
            log.write(f"\n[local-ci] timed out after {timeout:.0f}s\n")
            return 124
    return rc


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        time.sleep(1)
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
