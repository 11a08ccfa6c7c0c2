"""One long-lived shell for a whole CodeBuild build.

Commands are sourced, one at a time, into the same shell process, so `cd`, `export`, plain
variables, functions and `set` options carry from one command (and phase) to the next, as
in CodeBuild's buildspec 0.2 ("all commands run in the same instance of the shell"). Each
command's status is read back through a marker line on the shell's output. After every
command the shell's exported environment, working directory and options are saved; a
command that ends the shell itself (`exit 1`, or a failure under `set -e`) fails, and a new
shell resumes from that saved state.
"""

from __future__ import annotations

import os
import secrets
import shlex
import signal
import subprocess
from pathlib import Path

BASH_INTERNALS = (r"^declare -[-a-zA-Z]* (BASH[A-Z_]*|EUID|PPID|UID|SHELLOPTS|FUNCNAME|GROUPS|PIPESTATUS|"
                  r"RANDOM|SRANDOM|SECONDS|LINENO|HISTCMD|EPOCHSECONDS|EPOCHREALTIME|_|__local_ci_rc|"
                  r"OPTIND|OPTERR|DIRSTACK|COMP_WORDBREAKS)(=|$)")


class PersistentShell:
    def __init__(self, shell: str, env: dict[str, str], cwd: Path, control_dir: Path):
        self.shell = shell
        self.env = env
        self.cwd = cwd
        self.control = control_dir
        self.control.mkdir(parents=True, exist_ok=True)
        self.marker = f"__LOCAL_CI_DONE_{secrets.token_hex(8)}__"
        self.count = 0
        self.proc: subprocess.Popen | None = None
        self.restarts = 0

    @property
    def is_bash(self) -> bool:
        return Path(self.shell).name == "bash"

    # -- process -------------------------------------------------------------------------
    def _spawn(self) -> None:
        argv = [self.shell, "--noprofile", "--norc", "-s"] if self.is_bash else [self.shell, "-s"]
        self.proc = subprocess.Popen(argv, cwd=self.cwd, env=self.env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        state = self.control / "state.env"
        if state.exists():  # resume after a command ended the previous shell
            self._send(f". {shlex.quote(str(state))} >/dev/null 2>&1; "
                       f". {shlex.quote(str(self.control / 'state.opts'))} >/dev/null 2>&1; "
                       f"cd \"$(cat {shlex.quote(str(self.control / 'state.cwd'))})\" 2>/dev/null\n")

    def _send(self, text: str) -> None:
        assert self.proc is not None and self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except OSError:
                pass
        self._release()

    def _release(self) -> None:
        """Close our ends of an ended shell's pipes (the next command starts a new shell)."""
        if self.proc is not None:
            for pipe in (self.proc.stdin, self.proc.stdout):
                if pipe is not None:
                    try:
                        pipe.close()
                    except OSError:  # a broken pipe to a shell that is gone
                        pass
            self.proc.wait()
        self.proc = None

    # -- commands ------------------------------------------------------------------------
    def run(self, command: str, on_output=None) -> int:
        """Source `command` in the shell; `on_output(text)` gets each output line."""
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
                self._release()
            self._spawn()
        self.count += 1
        script = self.control / f"cmd-{self.count}.sh"
        script.write_text(command + "\n")
        q = shlex.quote
        c = self.control
        if self.is_bash:  # every variable and function, less bash's own read-only/dynamic ones
            save = f"{{ declare -p; declare -f; }} | grep -Ev {q(BASH_INTERNALS)} >{q(str(c / 'state.env'))}"
        else:
            save = f"export -p >{q(str(c / 'state.env'))}"
        self._send(
            f". {q(str(script))} </dev/null\n"
            f"__local_ci_rc=$?; {save}; set +o >{q(str(c / 'state.opts'))}; "
            f"pwd >{q(str(c / 'state.cwd'))}; printf '%s %s\\n' {self.marker} \"$__local_ci_rc\"\n"
        )
        assert self.proc is not None and self.proc.stdout is not None
        for raw in self.proc.stdout:
            text = raw.decode("utf-8", errors="replace")
            at = text.find(self.marker)
            if at >= 0:
                if at and on_output:
                    on_output(text[:at] + "\n")
                return int(text[at + len(self.marker):].strip() or 1)
            if on_output:
                on_output(text)
        # the shell ended inside the command (exit, set -e): its status is the command's
        rc = self.proc.wait()
        return rc if rc != 0 else 1


    def read_variables(self, names: list[str]) -> dict[str, str | None]:
        """Current values of shell variables `names` (None when unset)."""
        names = [n for n in names if n.replace("_", "a").isalnum() and not n[0].isdigit()]
        if not names:
            return {}
        out = self.control / "exported.bin"
        parts = " ".join(f"\"${{{n}-__LOCAL_CI_UNSET__}}\"" for n in names)
        self.run(f"printf '%s\\0' {parts} >{shlex.quote(str(out))}")
        values = out.read_bytes().decode(errors="replace").split("\0")
        return {n: (None if v == "__LOCAL_CI_UNSET__" else v) for n, v in zip(names, values, strict=False)}  # values ends with an empty field
