"""Model servers forked from a warm process: a local deploy without a new Python's imports.

A model server's Python spends ~2 s of CPU importing scikit-learn, SciPy, pandas and uvicorn before it
loads a model: most of a local deploy that needs a new server (a first deploy, another environment, a
changed capture setting), and most of the generated tests' time. The factory pays that once: it
imports what `serve` imports, then forks one server per request, each in a session of its own with
the deployer's arguments, environment, working directory and log, as `subprocess.Popen` would have
started it; the deployer health-checks and records it as before.

One factory per fingerprint (this package's code, the installed packages, the interpreter, PYTHONPATH
and the variables libraries read when they are imported, see IMPORT_TIME_VARIABLES), on a socket named
by it in a folder only this user can enter. A factory runs no thread of its own (forking is safe) and
exits once idle for IDLE_S, or as soon as its socket is removed. `<PACKAGE>_SERVER_FACTORY=off` starts
every server as a new Python instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import random
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

PACKAGE = __package__
SWITCH = f"{PACKAGE.upper()}_SERVER_FACTORY"
IDLE_S = 300.0
START_TIMEOUT_S = 60.0
# What a forked server cannot change after the fact: read by Python at start-up, by the BLAS/OpenMP
# runtimes when NumPy and scikit-learn load, by the C library. A server whose environment differs in
# any of them gets a factory of its own; every other variable is simply set in the forked server.
IMPORT_TIME_VARIABLES = ("PYTHON", "OMP_", "MKL_", "OPENBLAS_", "GOTO", "BLIS_", "VECLIB_", "NUMEXPR_",
                         "KMP_", "SKLEARN_", "SCIPY_", "NUMPY_", "PANDAS_", "JOBLIB_", "LD_", "MALLOC",
                         "LC_", "LANG", "TZ")


def import_time_environment(env: dict[str, str]) -> list[tuple[str, str]]:
    """The variables of `env` a factory is keyed on (see IMPORT_TIME_VARIABLES)."""
    return sorted((k, v) for k, v in env.items() if k.startswith(IMPORT_TIME_VARIABLES))


def _private_folder() -> Path | None:
    """This user's folder of factory sockets, or None when it is not safely ours (then no factory)."""
    base = os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir()
    folder = Path(base) / f"{PACKAGE}-servers-{os.getuid()}"
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() or info.st_mode & 0o077:
        return None  # a link, or a folder others can enter: a socket there could be theirs
    return folder


def fork_server(argv: list[str], env: dict[str, str], cwd: Path, log: Path, fingerprint: str
                ) -> tuple[int, subprocess.Popen | None] | None:
    """Have the factory of `fingerprint` fork a server running `python -m <package> *argv`: its pid, and
    the handle of the factory when this call started one. None when no factory can serve (switched
    off, no private folder, the factory would not start): the caller starts a new Python."""
    if os.environ.get(SWITCH, "").lower() in ("off", "0", "false", "no"):
        return None
    folder = _private_folder()
    if folder is None:
        return None
    address = folder / f"{fingerprint[:32]}.sock"
    started = None
    with open(folder / f"{fingerprint[:32]}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one deployer starts the factory, the others wait for it
        connection = _connect(address)
        if connection is None:
            started = _start_factory(address, env)
            connection = _connect(address) if started else None
    if connection is None:
        return None
    request = {"argv": argv, "env": env, "cwd": str(cwd), "log": str(log)}
    try:
        with connection, connection.makefile("rwb") as stream:
            stream.write(json.dumps(request).encode() + b"\n")
            stream.flush()
            answer = stream.readline()
    except OSError:  # the factory was stopped meanwhile
        return None
    return (json.loads(answer)["pid"], started) if answer else None


def _connect(address: Path) -> socket.socket | None:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(30)
    try:
        client.connect(str(address))
    except OSError:
        client.close()
        return None
    return client


def _start_factory(address: Path, env: dict[str, str]) -> subprocess.Popen | None:
    address.unlink(missing_ok=True)  # a factory that died left it
    with open(address.with_suffix(".log"), "ab") as log:
        factory = subprocess.Popen([sys.executable, "-m", f"{PACKAGE}.server_factory", str(address)],
                                   stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                   cwd=address.parent, start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline and factory.poll() is None:
        if address.exists():
            return factory
        time.sleep(0.05)
    if factory.poll() is None:
        factory.kill()
    factory.wait()
    return None


def _run(address: Path) -> None:
    """The factory: import what a server imports, then fork a server per request until idle."""
    import uvicorn  # noqa: F401  (the imports every server would pay)

    from . import __main__, serving  # noqa: F401
    from .monitoring import capture  # noqa: F401

    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the servers: they are not ours to wait for
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    address.with_suffix(".tmp").unlink(missing_ok=True)  # a factory killed while starting left it
    listener.bind(str(address.with_suffix(".tmp")))
    listener.listen(64)
    os.replace(address.with_suffix(".tmp"), address)  # connectable as soon as it exists
    inode, last = address.stat().st_ino, time.monotonic()
    listener.settimeout(1.0)
    while time.monotonic() - last < IDLE_S:
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            try:
                if address.stat().st_ino != inode:
                    return  # replaced by another factory
            except FileNotFoundError:
                return  # removed
            continue
        last = time.monotonic()
        connection.settimeout(10)  # a client that connects and says nothing does not stop the factory
        with connection, connection.makefile("rwb") as stream:
            try:
                request = json.loads(stream.readline() or b"null")
            except (OSError, ValueError):
                continue
            if not isinstance(request, dict):
                continue
            with warnings.catch_warnings():
                # Python >= 3.12 warns on fork when a process has threads: here, only the BLAS pools that
                # NumPy's and SciPy's OpenBLAS start when loaded, idle, and quiesced around fork by
                # OpenBLAS itself (pthread_atfork); the factory runs no Python thread.
                warnings.filterwarnings("ignore", ".*multi-threaded.*fork", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                for inherited in (stream, connection, listener):
                    inherited.close()
                _become_server(request)
            with contextlib.suppress(OSError):
                stream.write(json.dumps({"pid": pid}).encode() + b"\n")
    with contextlib.suppress(FileNotFoundError):
        if address.stat().st_ino == inode:
            address.unlink()


def _become_server(request: dict) -> None:
    """In the forked child: become the process `python -m <package> *argv` would have been; never returns."""
    code = 1
    try:
        os.setsid()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the server waits for its own children
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        for source, target in ((null, 0), (log, 1), (log, 2)):
            os.dup2(source, target)
        os.close(log)
        os.close(null)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        random.seed()  # not the factory's sequence (capture sampling)
        from .__main__ import main

        code = main(request["argv"])
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    except BaseException:  # whatever happened goes to the server's log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


if __name__ == "__main__":
    _run(Path(sys.argv[1]))
