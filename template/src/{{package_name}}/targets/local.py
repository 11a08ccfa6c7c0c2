"""The embedded default target: a registry in a folder, deployments as model servers on 127.0.0.1.

Layout under `local.state_dir` (default .mlops/):
  registry/<model>/versions/<N>/model/       the bundle (model.joblib, model.json)
  registry/<model>/versions/<N>/version.json metrics, lineage, approval status
  registry/<model>/environments/<env>.json   the version due in env, and the versions before it
  deployments/<env>.json                     pid, URL and version of the server running env
  capture/<env>/capture-*.jsonl              what the server of env was asked and answered
"""

from __future__ import annotations

import atexit
import fcntl
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path

from .. import server_factory
from ..errors import StageFailed
from .base import Deployment, ModelVersion, Target, invoke_http

PACKAGE = __package__.rsplit(".", 1)[0]
# A server's own port (health checks, model swaps) listens on the loopback whatever local.host is: loading
# a model is unpickling it, which nothing off this machine may ask for (serving.serve binds it there).
ADMIN_HOST = "127.0.0.1"
# Servers (and server factories) started by this process: they outlive the deploy call by design (a
# server exits when its deployment record names another), so their handles are kept, not collected.
_SERVERS: list[subprocess.Popen] = []


def _write_json(path: Path, data: dict) -> None:
    """Atomic: a reader never sees half a file, a crash never leaves one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def _free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


class LocalTarget(Target):
    name = "local"
    keeps_previous_samples = True

    @property
    def state(self) -> Path:
        return (self.root / self.config.local.state_dir).resolve()

    @property
    def registry(self) -> Path:
        return self.state / "registry" / self.config.model.name

    @contextmanager
    def _lock(self):
        self.registry.mkdir(parents=True, exist_ok=True)
        with open(self.registry / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield

    # -- registry --------------------------------------------------------------------------------
    def _versions(self) -> list[dict]:
        folder = self.registry / "versions"
        found = [_read_json(p / "version.json") for p in folder.iterdir()] if folder.exists() else []
        return sorted((v for v in found if v), key=lambda v: int(v["version"]))

    def _version(self, version: str) -> dict:
        record = _read_json(self.registry / "versions" / str(version) / "version.json")
        if record is None:
            raise StageFailed(f"local registry: no version {version} of model {self.config.model.name}")
        return record

    @staticmethod
    def _as_model_version(record: dict) -> ModelVersion:
        return ModelVersion(str(record["version"]), record["metrics"], record["status"], record["uri"])

    def serving_image(self) -> str | None:
        """The local target runs the image's own command on this machine: there is no image to record."""
        return None

    def register(self, model_dir: Path, metrics: dict, lineage: dict, approved: bool) -> ModelVersion:
        with self._lock():
            versions = self._versions()
            number = int(versions[-1]["version"]) + 1 if versions else 1
            folder = self.registry / "versions" / str(number)
            shutil.copytree(model_dir, folder / "model")
            record = {
                "version": str(number),
                "metrics": metrics,
                "lineage": lineage,
                "status": "Approved" if approved else "PendingManualApproval",
                "uri": str(folder / "model"),
                "created": datetime.now(UTC).isoformat(),
            }
            _write_json(folder / "version.json", record)
        return self._as_model_version(record)

    def _due(self, env: str) -> dict | None:
        return _read_json(self.registry / "environments" / f"{env}.json")

    def _assign(self, env: str, version: str) -> None:
        current = self._due(env) or {"version": None, "history": []}
        if current["version"] == version:
            return
        history = current["history"] + ([current["version"]] if current["version"] else [])
        _write_json(self.registry / "environments" / f"{env}.json", {"version": version, "history": history})

    def champion(self) -> ModelVersion | None:
        due = self._due("prod")
        if due and due["version"]:
            return self._as_model_version(self._version(due["version"]))
        approved = [v for v in self._versions() if v["status"] == "Approved"]
        return self._as_model_version(approved[-1]) if approved else None

    def promote(self, version: str | None, to_env: str) -> ModelVersion:
        with self._lock():
            if version is None:
                staging = self._due("staging")
                if not staging:
                    raise StageFailed("promote: nothing is deployed to staging; name a version with --version")
                version = staging["version"]
            record = self._version(version)
            if record["status"] == "Rejected":
                raise StageFailed(f"promote: version {version} is Rejected")
            record["status"] = "Approved"
            _write_json(self.registry / "versions" / str(version) / "version.json", record)
            self._assign(to_env, str(version))
        return self._as_model_version(record)

    def rollback(self, env: str) -> ModelVersion:
        with self._lock():
            due = self._due(env)
            if not due or not due["history"]:
                raise StageFailed(f"rollback: {env} has no previous version to return to")
            previous = due["history"][-1]
            _write_json(
                self.registry / "environments" / f"{env}.json",
                {"version": previous, "history": due["history"][:-1]},
            )
        if self._deployment(env):
            self._serve(env, self._version(previous))
        return self._as_model_version(self._version(previous))

    # -- deployments -----------------------------------------------------------------------------
    def _deployment_file(self, env: str) -> Path:
        return self.state / "deployments" / f"{env}.json"

    def _deployment(self, env: str) -> dict | None:
        return _read_json(self._deployment_file(env))

    def _version_for(self, env: str, assign: bool = True) -> dict:
        if self.config.environment(env).approval_required:
            due = self._due(env)
            if not due:
                raise StageFailed(f"deploy: {env} needs an approved version; run `promote` first")
            return self._version(due["version"])
        candidates = [v for v in self._versions() if v["status"] != "Rejected"]
        if not candidates:
            raise StageFailed("deploy: the registry holds no version; run `register` first")
        if assign:
            self._assign(env, candidates[-1]["version"])
        return candidates[-1]

    def deploy(self, env: str, version: str | None = None) -> Deployment:
        if version is None:
            return self._serve(env, self._version_for(env))
        with self._lock():
            record = self._version(str(version))
            self.check_deployable(env, str(version), record["status"])
            self._assign(env, str(version))
        return self._serve(env, record)

    # -- the serving contract --------------------------------------------------------------------
    def fetch_model(self, version: str, dest: Path) -> Path | None:
        return Path(self._version(version)["uri"])  # the registry's own folder: read, never written

    def serving_version(self, env: str) -> str | None:
        deployment = self._deployment(env)
        return str(deployment["version"]) if deployment else None

    def due_version(self, env: str) -> str | None:
        return str(self._version_for(env, assign=False)["version"])

    def previous_sample(self, env: str) -> list | None:
        due = self._due(env)
        if not due or not due["history"]:
            return None
        sample = _read_json(Path(self._version(due["history"][-1])["uri"]) / "sample.json")
        return sample["instances"] if sample else None

    # -- servers ---------------------------------------------------------------------------------
    def _serve(self, env: str, record: dict) -> Deployment:
        host = self.config.local.host
        before = self._deployment(env)
        # One URL per environment: the new server shares the old one's port (SO_REUSEPORT) and is
        # health-checked on a private port of its own before the record names it.
        port = int(before["url"].rsplit(":", 1)[1]) if before else _free_port(host)
        state_file = self._deployment_file(env)
        state_file.parent.mkdir(parents=True, exist_ok=True)
        log = state_file.with_suffix(".log")
        image_mode = self.config.serving.mode == "image"
        # serving.mode image: started the way the image starts it (Dockerfile: ENTRYPOINT + CMD), the
        # model, address and port from the image's environment variables, not from flags.
        options = [] if image_mode else ["--host", host, "--port", str(port)]
        image_env = {"SERVE_HOST": host, "AIP_HTTP_PORT": str(port)} if image_mode else {}
        percent = self.config.capture_percent(env)
        if percent > 0:
            options += ["--capture-dir", str(self.capture_dir(env)), "--capture-percent", str(percent),
                        "--capture-max-mb", str(self.config.monitoring.capture_max_mb)]
        # The server imports this package from wherever we were imported, installed or not.
        source_root = str(Path(__file__).resolve().parents[2])
        python_path = os.pathsep.join(p for p in (source_root, os.environ.get("PYTHONPATH")) if p)
        code = _code_fingerprint()
        fingerprint = _fingerprint(code, [*options, *sorted(image_env.items()), python_path])
        if before and before.get("fingerprint") == fingerprint and self._swap(before, record):
            _write_json(state_file, {**before, "version": record["version"],
                                     "swapped": datetime.now(UTC).isoformat()})
            return Deployment(env, before["url"], str(record["version"]))
        health_port = _free_port(ADMIN_HOST)
        if image_mode:
            image_env["MODEL_DIR"] = str(record["uri"])
        model = [] if image_mode else ["--model-dir", str(record["uri"])]
        command = [sys.executable, "-m", PACKAGE, "serve", *model, *options, "--health-port", str(health_port),
                   "--state-file", str(state_file)]
        inherited = {k: v for k, v in os.environ.items()
                     if not (image_mode and k in ("AIP_STORAGE_URI", "AZUREML_MODEL_DIR", "AIP_HTTP_PORT"))}
        env_vars = {**inherited, **image_env, "MODEL_VERSION": str(record["version"]), "PYTHONPATH": python_path}
        process = _start_server(command, env_vars, self.root, log,
                                _fingerprint(code, server_factory.import_time_environment(env_vars)))
        url = f"http://{host}:{port}"
        admin = f"http://{ADMIN_HOST}:{health_port}"
        self._wait_healthy(admin, process, log)
        # Green is healthy: record it, and the blue server sees it is no longer named and exits; wait
        # for that, so that from here on the environment's URL answers with the new version only.
        _write_json(
            state_file,
            {"pid": process.pid, "url": url, "version": record["version"], "log": str(log),
             "started": datetime.now(UTC).isoformat(), "admin": admin,
             "fingerprint": fingerprint},
        )
        if before and before["pid"] != process.pid:
            _wait_exit(before["pid"])
        return Deployment(env, url, str(record["version"]))

    @staticmethod
    def _swap(before: dict, record: dict) -> bool:
        """Redeploy into the running server: it loads `record`'s bundle and serves it from the next request
        on (~0.1 s, not the seconds of a new process's imports). False when it cannot be asked (it has
        exited); a bundle it cannot load fails the stage, as a new server failing to start would, and the
        version serving now keeps serving."""
        body = json.dumps({"model_dir": str(record["uri"]), "version": str(record["version"])}).encode()
        request = urllib.request.Request(f"{before['admin']}/-/model", data=body, method="POST",
                                         headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.status == 200
        except urllib.error.HTTPError as exc:
            if exc.code == 422:
                detail = json.loads(exc.read() or b"{}").get("error", "")
                raise StageFailed(f"deploy: the model server cannot load version {record['version']}: {detail}") from None
            return False
        except OSError:
            return False

    @staticmethod
    def _wait_healthy(url: str, process: subprocess.Popen | _Forked, log: Path, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                tail = log.read_text(errors="replace")[-2000:]
                # A forked server's exit code went to the factory, which let the kernel reap it.
                code = f" with {process.returncode}" if isinstance(process, subprocess.Popen) else ""
                raise StageFailed(f"deploy: the model server exited{code}:\n{tail}")
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.1)
        process.kill()
        raise StageFailed(f"deploy: the model server did not answer {url}/ping within {timeout:.0f}s")

    def capture_dir(self, env: str) -> Path | None:
        return self.state / "capture" / env

    def endpoint(self, env: str) -> dict:
        deployment = self._deployment(env)
        if not deployment:
            raise StageFailed(f"{env} is not deployed on the local target; run `deploy --env {env}` first")
        return deployment

    def invoke(self, env: str, instances: list) -> list:
        return invoke_http(self.endpoint(env)["url"], instances)

    def undeploy(self, env: str) -> None:
        deployment = self._deployment(env)
        if not deployment:
            return
        self._deployment_file(env).unlink()
        try:
            os.kill(deployment["pid"], signal.SIGTERM)
        except ProcessLookupError:
            return
        # Undeployed means stopped (and, when this process started it, reaped: no zombie, no warning).
        if not _wait_exit(deployment["pid"]):
            for proc in [proc for proc in _SERVERS if proc.pid == deployment["pid"]]:
                proc.kill()
                proc.wait()
                _SERVERS.remove(proc)


def _code_fingerprint() -> str:
    """What a server runs besides its model and options: this package's code, the installed packages
    (dist-info names carry versions) and the interpreter."""
    digest = hashlib.sha256(sys.executable.encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(f"{path.relative_to(package)}\0".encode() + path.read_bytes())
    for folder in sorted({p for p in sys.path if p.endswith("-packages") and os.path.isdir(p)}):
        digest.update("\0".join(sorted(os.listdir(folder))).encode())
    return digest.hexdigest()


def _fingerprint(code: str, options: list) -> str:
    """A server's (code and options: a redeploy with the same one swaps the model in the running server;
    any change, e.g. an edited module, a `pip install`, another capture percent, starts a new one), or a
    server factory's (code, PYTHONPATH and the variables read at import)."""
    return hashlib.sha256(json.dumps([code, options]).encode()).hexdigest()


class _Forked:
    """A server the factory forked: not this process's child, so watched through its pid."""

    def __init__(self, pid: int) -> None:
        self.pid = pid

    def poll(self) -> int | None:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return -1
        return None

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)


def _start_server(command: list[str], env: dict[str, str], cwd: Path, log: Path, factory_key: str
                  ) -> subprocess.Popen | _Forked:
    """`command` (python -m <package> serve ...) in a session of its own, output to `log`: forked by the
    warm server factory (server_factory.py), else a new Python."""
    forked = server_factory.fork_server(command[3:], env, cwd, log, factory_key)
    if forked is not None:
        pid, factory = forked
        if factory is not None:
            _SERVERS.append(factory)  # it outlives us, as the servers do
        return _Forked(pid)
    with open(log, "ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                   start_new_session=True)
    _SERVERS.append(process)
    return process


def _wait_exit(pid: int, timeout: float = 15) -> bool:
    """Until `pid` has exited (True) or `timeout` passed (False); a server this process started is
    waited on through its handle, which reaps it."""
    for proc in [proc for proc in _SERVERS if proc.pid == pid]:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        _SERVERS.remove(proc)
        return True
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


@atexit.register
def _let_servers_outlive_us() -> None:
    """Deployed servers outlive this process by design (their own session; init adopts them): the handles
    of those still running are let go without the "still running" ResourceWarning meant for forgotten
    children, and the exited ones are reaped."""
    for proc in _SERVERS:
        if proc.poll() is None:
            proc.returncode = 0  # detached on purpose, not forgotten
    _SERVERS.clear()


TARGET = LocalTarget
