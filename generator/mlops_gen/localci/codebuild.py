"""AWS CodeBuild (buildspec version 0.2) run locally.

Semantics implemented (see the AWS "Build specification reference" and "Build phase
transitions"):

* one shell instance for the whole build (`env.shell`, default bash), so the working
  directory and variables persist across commands and phases;
* environment: `env.variables`, then `--var` (start-build overrides win), then
  `parameter-store` / `secrets-manager` values from the `--secrets` file; the `CODEBUILD_*`
  variables a build sees, derived from git;
* each command's exit status is checked: the first failing command fails the phase, the
  rest of its `commands` are skipped and its `finally` block still runs;
* transitions: a failure in `install` or `pre_build` skips to the end (no later phase, no
  artifacts); a failure in `build` still runs `post_build` (with
  `CODEBUILD_BUILD_SUCCEEDING=0`) and uploads artifacts;
* phase `on-failure`: `ABORT` ends the build at once, `CONTINUE` goes on to the next phase
  (the build still fails), `RETRY`, `RETRY-<n>`, `RETRY-<regex>`, `RETRY-<n>-<regex>`
  re-run the phase (3 times by default) while the failing command's output matches regex;
* `artifacts` (with `secondary-artifacts`) and `reports` are copied to
  `.local-ci/aws/artifacts/` and `.local-ci/aws/reports/`; `exported-variables` are read
  from the shell at the end of the build and written to the report.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

from . import artifacts
from .errors import CIUsageError, load_mapping
from .report import FAILED, PASSED, SKIPPED, WARNING
from .runtime import Context
from .shell import PersistentShell

PHASES = ("install", "pre_build", "build", "post_build")
DEFAULT_RETRIES = 3


def parse_on_failure(value: str | None, phase: str) -> tuple[str, int, re.Pattern | None]:
    """('ABORT'|'CONTINUE'|'RETRY'|'', retries, regex)."""
    if value is None:
        return "", 0, None
    text = str(value).strip()
    upper = text.upper()
    if upper in ("ABORT", "CONTINUE"):
        return upper, 0, None
    if upper == "RETRY":
        return "RETRY", DEFAULT_RETRIES, re.compile(".*")
    if upper.startswith("RETRY-"):
        rest = text[6:]
        m = re.fullmatch(r"(\d+)(?:-(.*))?", rest, re.DOTALL)
        count, pattern = (int(m.group(1)), m.group(2)) if m else (DEFAULT_RETRIES, rest)
        if not 0 <= count <= 100:
            raise CIUsageError(f"phases.{phase}.on-failure: retry count {count} is not between 0 and 100")
        try:
            return "RETRY", count, re.compile(pattern if pattern else ".*")
        except re.error as exc:
            raise CIUsageError(f"phases.{phase}.on-failure: bad regular expression {pattern!r}: {exc}") from exc
    raise CIUsageError(f"phases.{phase}.on-failure: {text!r} is not ABORT, CONTINUE or RETRY[-count][-regex]")


def _commands(block, where: str) -> list[str]:
    if block is None:
        return []
    if not isinstance(block, list):
        raise CIUsageError(f"{where}: expected a list of commands")
    out = []
    for item in block:
        if isinstance(item, (dict, list)):
            raise CIUsageError(f"{where}: a command must be a string, got {type(item).__name__} "
                               "(quote commands that contain ': ')")
        out.append(str(item))
    return out


def _load(path: Path) -> dict:
    spec = load_mapping(path)
    version = str(spec.get("version", ""))
    if version != "0.2":
        raise CIUsageError(f"{path.name}: version {version or '(missing)'} is not supported (only 0.2)")
    if not isinstance(spec.get("phases") or {}, dict):
        raise CIUsageError(f"{path.name}: phases must be a mapping")
    unknown = set(spec.get("phases") or {}) - set(PHASES)
    if unknown:
        raise CIUsageError(f"{path.name}: unknown phase(s) {', '.join(sorted(unknown))}")
    return spec


def _secret_values(env_spec: dict, secrets: dict, where: str) -> dict[str, str]:
    """parameter-store / secrets-manager values from the --secrets file, or one error naming all
    that are missing."""
    values, missing = {}, []
    store = secrets.get("parameter-store") or {}
    for var, name in (env_spec.get("parameter-store") or {}).items():
        if str(name) in store:
            values[var] = str(store[str(name)])
        else:
            missing.append(f"parameter-store {var} ← {name}")
    manager = secrets.get("secrets-manager") or {}
    for var, ref in (env_spec.get("secrets-manager") or {}).items():
        secret_id, _, rest = str(ref).partition(":")
        if secret_id.startswith("arn"):  # arn:aws:secretsmanager:region:acct:secret:name-XXXX:key:...
            parts = str(ref).split(":")
            secret_id, rest = ":".join(parts[:7]), ":".join(parts[7:])
        json_key = rest.split(":", 1)[0] if rest else ""
        value = manager.get(str(ref), manager.get(secret_id))
        if isinstance(value, dict):
            value = value.get(json_key) if json_key else json.dumps(value)
        elif json_key and isinstance(value, str):
            try:
                value = json.loads(value).get(json_key)
            except (ValueError, AttributeError):
                value = None
        if value is None:
            missing.append(f"secrets-manager {var} ← {ref}")
        else:
            values[var] = str(value)
    if missing:
        raise CIUsageError(f"{where}: no value for " + "; ".join(missing)
                           + " (give them in the file passed with --secrets)")
    return values


def predefined(ctx: Context, build_id: str) -> dict[str, str]:
    g = ctx.git
    region = ctx.env.get("AWS_REGION") or ctx.env.get("AWS_DEFAULT_REGION") or "us-east-1"
    env = {
        "CODEBUILD_CI": "true",
        "CODEBUILD_SRC_DIR": str(ctx.workspace),
        "CODEBUILD_BUILD_ID": build_id,
        "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{region}:000000000000:build/{build_id}",
        "CODEBUILD_BUILD_NUMBER": "1",
        "CODEBUILD_BUILD_IMAGE": "aws/codebuild/standard:7.0",
        "CODEBUILD_BUILD_SUCCEEDING": "1",
        "CODEBUILD_INITIATOR": "mlops-gen-local",
        "CODEBUILD_LOG_PATH": build_id.split(":", 1)[1],
        "CODEBUILD_START_TIME": str(int(time.time() * 1000)),
        "CODEBUILD_RESOLVED_SOURCE_VERSION": g.sha,
        "CODEBUILD_SOURCE_VERSION": g.sha,
        "CODEBUILD_SOURCE_REPO_URL": g.remote_url,
        "CODEBUILD_KMS_KEY_ID": f"arn:aws:kms:{region}:000000000000:alias/aws/s3",
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
    }
    env.update(ctx.trigger.predefined)  # CODEBUILD_WEBHOOK_* of a push or pull request build
    return env


_CONTROL = re.compile(r"^(if|elif|else|then|fi|for|while|until|do|done|case|esac|echo)\b|^[;&|()]+$")


def _short(command: str) -> str:
    """A step's name: a CodeBuild command has none, so a line of it that does something. Of `if [ ... ];
    then python -m pkg gate ...; fi`, the `python -m pkg gate ...` line, not the `if` (five steps named
    `if [ "${RUN_REASON:-push}" != "batch" ]; then` told the reader nothing); of several branches the last
    (the `else`, what runs when no condition holds); a plain script by its first line. Never cut: the
    table keeps it whole when the output is not a terminal, and a terminal's table shortens it itself."""
    lines = [line.strip() for line in command.strip().splitlines() if line.strip()]
    if not lines:
        return ""
    doing = [line for line in lines if not _CONTROL.match(line)]
    return doing[-1] if doing and len(doing) < len(lines) else lines[0]


def run(ctx: Context, path: Path) -> dict:
    spec = _load(path)
    env_spec = spec.get("env") or {}
    phases = spec.get("phases") or {}
    plans = {}
    for phase in PHASES:
        if phase not in phases:
            continue
        body = phases[phase] or {}
        plans[phase] = (
            _commands(body.get("commands"), f"phases.{phase}.commands"),
            _commands(body.get("finally"), f"phases.{phase}.finally"),
            parse_on_failure(body.get("on-failure"), phase),
        )
        for ignored in ("runtime-versions", "run-as"):
            if ignored in body:
                ctx.reporter.note(f"phases.{phase}.{ignored}: ignored locally (the host's tools are used)")
    shell = str(env_spec.get("shell") or "bash")
    if shell not in ("bash", "/bin/sh", "sh", "/bin/bash"):
        raise CIUsageError(f"env.shell: {shell!r} is not a Linux shell CodeBuild supports (bash, /bin/sh)")
    if "batch" in spec:
        ctx.reporter.note("batch: ignored locally; the buildspec runs as one build")

    build_id = f"local:{uuid.uuid4()}"
    env = dict(ctx.env)
    env.update(predefined(ctx, build_id))
    env.update({str(k): "" if v is None else str(v) for k, v in (env_spec.get("variables") or {}).items()})
    env.update(ctx.trigger.variables)  # what started the build overrides the buildspec, as in CodeBuild
    env.update(ctx.variables)
    env.update(_secret_values(env_spec, ctx.secrets, path.name))

    shell_path = {"bash": "bash", "/bin/bash": "bash"}.get(shell, "/bin/sh")
    session = PersistentShell(shell_path, env, ctx.workspace, ctx.workspace.parent / "shell")
    phase_status: dict[str, str] = {}
    succeeding = True
    stop = False  # skip the remaining phases
    reached_build = False
    try:
        for phase in PHASES:
            if phase not in plans:
                continue
            commands, finally_, (action, retries, regex) = plans[phase]
            if stop:
                for i, cmd in enumerate(commands + finally_):
                    ctx.reporter.skip(f"{phase}: {_short(cmd)}", "an earlier phase failed",
                                      phase=phase, command=cmd, block="finally" if i >= len(commands) else "commands")
                phase_status[phase] = SKIPPED
                continue
            if phase in ("build", "post_build"):
                reached_build = True
            attempt = 0
            while True:
                ok, output = _run_phase(ctx, session, phase, commands, finally_, attempt)
                if ok or action != "RETRY" or attempt >= retries or not regex.search(output):
                    break
                for step in ctx.reporter.steps:  # superseded by the retry: not a failure of the build
                    if step.detail.get("phase") == phase and step.detail.get("attempt") == attempt \
                            and step.status == FAILED:
                        step.status, step.message = WARNING, f"{step.message}; phase retried"
                attempt += 1
                if succeeding:
                    session.run("export CODEBUILD_BUILD_SUCCEEDING=1")
                ctx.reporter.note(f"{phase} failed; retry {attempt} of {retries} (on-failure RETRY)")
            phase_status[phase] = PASSED if ok else FAILED
            if ok:
                continue
            succeeding = False
            if action == "CONTINUE":
                continue
            if action == "ABORT" or phase in ("install", "pre_build") or phase == "post_build":
                stop = True
        exported_names = [str(n) for n in (env_spec.get("exported-variables") or [])]
        exported = session.read_variables(exported_names) if exported_names else {}
    finally:
        session.close()

    collected = {}
    upload = reached_build and not (stop and any(
        phase_status.get(p) == FAILED and plans[p][2][0] == "ABORT" for p in plans))
    if upload:
        collected = _collect_outputs(ctx, spec)
    return {
        "result": "succeeded" if succeeding else "failed",
        "build_id": build_id,
        "shell": shell,
        "phases": phase_status,
        "exported_variables": exported,
        "shell_restarts": session.restarts,
        **collected,
    }


def _run_phase(ctx: Context, session: PersistentShell, phase: str, commands: list[str],
               finally_: list[str], attempt: int) -> tuple[bool, str]:
    """Run a phase's commands then its finally block; (succeeded, output of the failure).

    The first failing command sets CODEBUILD_BUILD_SUCCEEDING=0 for everything after it.
    """
    ok, failure_output = True, ""
    for block, items in (("commands", commands), ("finally", finally_)):
        if block == "finally" and not items:
            break
        block_failed = False
        for cmd in items:
            label = f"{phase}: {_short(cmd)}" + (" [finally]" if block == "finally" else "")
            label += f" (retry {attempt})" if attempt else ""
            detail = {"phase": phase, "block": block, "command": cmd, "attempt": attempt}
            if block_failed:
                ctx.reporter.skip(label, "an earlier command failed", **detail)
                continue
            step = ctx.new_step(label, **detail)
            ctx.reporter.start(step)
            captured: list[str] = []
            with ctx.open_log(step, "w") as log:
                log.write(f"[{phase}] Running command {cmd}\n")

                def out(text: str, log=log, step=step, captured=captured) -> None:
                    log.write(text)
                    log.flush()
                    captured.append(text)
                    ctx.reporter.line(step, text)

                rc = session.run(cmd, out)
                if rc != 0:
                    log.write(f"\n[Container] Command did not exit successfully {cmd} exit status {rc}\n")
            ctx.reporter.finish(step, PASSED if rc == 0 else FAILED, rc,
                                "" if rc == 0 else f"exit status {rc}")
            if rc != 0:
                if ok:
                    failure_output = "".join(captured)
                    session.run("export CODEBUILD_BUILD_SUCCEEDING=0")
                ok = False
                block_failed = True
    return ok, failure_output


def _collect_outputs(ctx: Context, spec: dict) -> dict:
    out: dict = {}
    arts = spec.get("artifacts") or {}
    collected: dict[str, list[str]] = {}
    sets = [("primary", arts)] + [(str(k), v or {}) for k, v in (arts.get("secondary-artifacts") or {}).items()]
    for ident, art in sets:
        files = art.get("files") or []
        if not files:
            continue
        base = ctx.workspace / str(art.get("base-directory") or ".")
        name = str(art.get("name") or ident)
        dest = ctx.out_dir / "artifacts" / name
        collected[name] = artifacts.collect(base, [str(f) for f in files], dest,
                                            exclude=[str(e) for e in art.get("exclude-paths") or []],
                                            flatten=str(art.get("discard-paths", "no")).lower() in ("yes", "true"))
    if collected:
        out["artifacts"] = {k: {"path": str(ctx.out_dir / "artifacts" / k), "files": v} for k, v in collected.items()}
    reports = {}
    for group, rep in (spec.get("reports") or {}).items():
        rep = rep or {}
        base = ctx.workspace / str(rep.get("base-directory") or ".")
        dest = ctx.out_dir / "reports" / str(group)
        files = artifacts.collect(base, [str(f) for f in rep.get("files") or []], dest,
                                  flatten=str(rep.get("discard-paths", "no")).lower() in ("yes", "true"))
        reports[str(group)] = {"path": str(dest), "format": rep.get("file-format", "JUNITXML"), "files": files}
    if reports:
        out["reports"] = reports
    return out
