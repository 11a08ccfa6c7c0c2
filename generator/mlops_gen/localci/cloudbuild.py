"""Google Cloud Build config (cloudbuild.yaml / .json) run locally.

* Substitutions: built-ins from git (COMMIT_SHA, SHORT_SHA, REVISION_ID, BRANCH_NAME,
  TAG_NAME, REPO_NAME, REPO_FULL_NAME) and from `--var` (PROJECT_ID, LOCATION, ... have
  local placeholders); user substitutions (`_NAME`) from the file's `substitutions`, then
  `--var`. `$VAR` / `${VAR}` are replaced in every field but `script` (as the service does);
  `$$` is a literal `$`. Under `substitutionOption: MUST_MATCH` (the default) a reference
  to an undefined substitution, or a user substitution never referenced, fails the build
  before any step runs (exit 2); under `ALLOW_LOOSE` the former becomes empty.
  `dynamicSubstitutions` expands substitutions inside substitution values;
  `automapSubstitutions` puts them in the steps' environment.
* Steps are scheduled by `waitFor` (default: every earlier step; `-`: at the start); steps
  whose dependencies are met run in parallel threads. A failing step (unless
  `allowFailure` or an `allowExitCodes` status) fails the build: nothing more starts and
  running steps are cancelled.
* A step runs on the host: `entrypoint` + `args`, or `script` (its shebang, else /bin/sh),
  with `env` (and `options.env`), `secretEnv` (values from `--secrets` secret-manager),
  `dir` relative to the workspace and `timeout`. Like a container, whatever a step started
  in the background ends with it.
* Images: `python[:tag]` images run with the run's isolated Python; general-purpose OS
  images (ubuntu, debian, bash, alpine, busybox) and Google's docker builder
  (gcr.io/cloud-builders/docker: the host's `docker`; a step that calls it where there is
  none fails, as it should) run with the host's tools; any other image is an error (exit 2)
  unless mapped with `--map-image IMAGE=ENTRYPOINT`.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from . import artifacts
from .errors import CIUsageError, load_mapping
from .report import FAILED, PASSED, SKIPPED, WARNING
from .runtime import Context, run_logged
from .workspace import STEP_MARKER, reap

_REF = re.compile(r"\$(\$|\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Z_][A-Z0-9_]*))")
_USER_KEY = re.compile(r"^_[A-Z0-9_]+$")
PYTHON_IMAGE = re.compile(r"^(?:(?:docker\.io|mirror\.gcr\.io|index\.docker\.io)/)?(?:library/)?python(?::[^/@]+)?(?:@sha256:[0-9a-f]+)?$")
HOST_IMAGES = {  # general-purpose images whose default entrypoint is a host tool ('' = none)
    "ubuntu": "", "debian": "", "alpine": "", "busybox": "", "bash": "bash",
}
# Google's builder images whose entrypoint is one CLI the host may have: its CLI stands in for it.
GOOGLE_BUILDERS = {"gcr.io/cloud-builders/docker": "docker"}
BUILTINS = ("PROJECT_ID", "PROJECT_NUMBER", "LOCATION", "BUILD_ID", "COMMIT_SHA", "SHORT_SHA", "REVISION_ID",
            "BRANCH_NAME", "TAG_NAME", "REPO_NAME", "REPO_FULL_NAME", "TRIGGER_NAME", "TRIGGER_BUILD_CONFIG_PATH",
            "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT", "_HEAD_BRANCH", "_BASE_BRANCH", "_HEAD_REPO_URL",
            "_PR_NUMBER")


def builtins(ctx: Context, config_path: str) -> dict[str, str]:
    g = ctx.git
    segments = re.split(r"[:/]", g.remote_url.rstrip("/").removesuffix(".git"))
    full = "/".join(segments[-2:]) if len(segments) >= 2 and g.remote_url else g.repo_name
    project = "local-project"
    values = {
        "PROJECT_ID": project, "PROJECT_NUMBER": "000000000000", "LOCATION": "global",
        "BUILD_ID": str(uuid.uuid4()), "COMMIT_SHA": g.sha, "SHORT_SHA": g.short_sha, "REVISION_ID": g.sha,
        "BRANCH_NAME": g.branch, "TAG_NAME": g.tag, "REPO_NAME": g.repo_name, "REPO_FULL_NAME": full,
        "TRIGGER_NAME": "local", "TRIGGER_BUILD_CONFIG_PATH": config_path,
        "SERVICE_ACCOUNT_EMAIL": f"{project}@cloudbuild.gserviceaccount.com",
        "SERVICE_ACCOUNT": f"projects/{project}/serviceAccounts/{project}@cloudbuild.gserviceaccount.com",
    }
    return values


class Substituter:
    def __init__(self, values: dict[str, str], loose: bool):
        self.values = values
        self.loose = loose
        self.used: set[str] = set()
        self.missing: list[str] = []

    def __call__(self, text: str) -> str:
        def sub(m: re.Match) -> str:
            if m.group(1) == "$":
                return "$"
            name = m.group(2) or m.group(3)
            self.used.add(name)
            if name in self.values:
                return self.values[name]
            if name not in self.missing:
                self.missing.append(name)
            return ""
        return _REF.sub(sub, text)

    def walk(self, node: Any, skip: tuple[str, ...] = ()) -> Any:
        if isinstance(node, str):
            return self(node)
        if isinstance(node, list):
            return [self.walk(v, skip) for v in node]
        if isinstance(node, dict):
            return {k: (v if k in skip else self.walk(v, skip)) for k, v in node.items()}
        return node


def _load(path: Path) -> dict:
    doc = load_mapping(path)
    if not isinstance(doc.get("steps"), list) or not doc["steps"]:
        raise CIUsageError(f"{path.name}: expected a mapping with a non-empty steps list")
    return doc


def _references(node: Any, skip_keys: tuple[str, ...]) -> set[str]:
    probe = Substituter({}, True)
    probe.walk(node, skip_keys)
    return probe.used


def _duration(value: Any, where: str) -> float | None:
    if value in (None, ""):
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)s\s*", str(value))
    if not m:
        raise CIUsageError(f"{where}: timeout {value!r} is not a duration like '600s'")
    return float(m.group(1))


def resolve_substitutions(ctx: Context, doc: dict, rel: str) -> tuple[dict, Substituter]:
    options = doc.get("options") or {}
    loose = str(options.get("substitutionOption", "MUST_MATCH")).upper() == "ALLOW_LOOSE"
    declared = {str(k): "" if v is None else str(v) for k, v in (doc.get("substitutions") or {}).items()}
    for key in declared:
        if not _USER_KEY.match(key):
            raise CIUsageError(f"substitutions: key {key!r} must start with '_' and use only A-Z, 0-9 and '_'")
    used = _references({k: v for k, v in doc.items() if k != "substitutions"}, ("script",))
    values = builtins(ctx, rel)
    values.update(declared)
    values.update(ctx.trigger.predefined)  # _PR_NUMBER, _HEAD_BRANCH, ... of a pull request
    values.update(ctx.trigger.variables)  # the trigger's substitutions override the file's
    for key, value in ctx.variables.items():
        if key not in ctx.explicit and key not in declared and key not in used:
            continue  # a repository default (pyproject.toml) applies only to files that use it
        if key.startswith("_") and not _USER_KEY.match(key):
            raise CIUsageError(f"--var {key}: a substitution key must start with '_' and use only A-Z, 0-9, '_'")
        if not key.startswith("_") and key not in BUILTINS:
            raise CIUsageError(f"--var {key}: not a built-in substitution and does not start with '_'")
        values[key] = value
    if options.get("dynamicSubstitutions"):
        for _ in range(5):  # values may refer to each other
            inner = Substituter(values, True)
            values = {k: inner(v) for k, v in values.items()}
    sub = Substituter(values, loose)
    build = sub.walk({k: v for k, v in doc.items() if k != "substitutions"}, ("script",))
    if not loose:
        problems = []
        for name in sub.missing:
            kind = "is not a valid built-in substitution" if not name.startswith("_") else \
                "is not matched in the substitution data"
            problems.append(f'key in the template "{name}" {kind}')
        user_defined = {k for k in values if k.startswith("_") and k not in BUILTINS}
        for name in sorted(user_defined - sub.used):
            problems.append(f'key "{name}" in the substitution data is not matched in the template')
        if problems:
            raise CIUsageError("substitutions (MUST_MATCH): " + "; ".join(problems)
                               + " (write $$ for a literal $, or set options.substitutionOption: ALLOW_LOOSE)")
    return build, sub


class Scheduler:
    def __init__(self, ctx: Context, build: dict, values: dict[str, str]):
        self.ctx = ctx
        self.build = build
        self.values = values
        self.options = build.get("options") or {}
        self.failed = threading.Event()
        self.cancel_reason = ""
        self.running: dict[str, str] = {}  # step id -> its step marker
        self.lock = threading.Lock()
        self.secrets = self._secret_env()

    def _secret_env(self) -> dict[str, str]:
        wanted: dict[str, str] = {}  # env var -> secret version name
        for item in (self.build.get("availableSecrets") or {}).get("secretManager") or []:
            wanted[str(item.get("env"))] = str(item.get("versionName"))
        needed = {str(v) for s in self.build["steps"] for v in s.get("secretEnv") or []}
        needed |= {str(v) for v in self.options.get("secretEnv") or []}
        for legacy in self.build.get("secrets") or []:
            for var in (legacy.get("secretEnv") or {}):
                wanted.setdefault(str(var), str(var))
        store = self.ctx.secrets.get("secret-manager") or {}
        out, missing = {}, []
        for var in sorted(needed):
            if var not in wanted:
                raise CIUsageError(f"secretEnv {var} is not defined in availableSecrets")
            version = wanted[var]
            short = re.sub(r"^projects/[^/]+/secrets/([^/]+)/versions/.*$", r"\1", version)
            value = store.get(version, store.get(short, store.get(var)))
            if value is None:
                missing.append(f"{var} ← {version}")
            else:
                out[var] = str(value)
        if missing:
            raise CIUsageError("no value for secret(s) " + "; ".join(missing)
                               + " (give them under secret-manager in the --secrets file)")
        return out

    def plan(self) -> list[dict]:
        steps, ids = [], []
        for i, raw in enumerate(self.build["steps"]):
            if not isinstance(raw, dict) or "name" not in raw:
                raise CIUsageError(f"steps[{i}]: a step needs a name (its builder image)")
            sid = str(raw.get("id") or f"step #{i}")
            wait_for = raw.get("waitFor")
            if wait_for is None:
                deps = list(ids)
            elif wait_for == ["-"] or wait_for == "-":
                deps = []
            else:
                deps = [str(w) for w in wait_for]
                for d in deps:
                    if d not in ids:
                        raise CIUsageError(f"steps[{i}] ({sid}): waitFor {d!r} is not the id of an earlier step")
            if "script" in raw and raw.get("args"):
                raise CIUsageError(f"steps[{i}] ({sid}): script and args cannot both be set")
            entrypoint = self._entrypoint(str(raw["name"]), i, sid)
            steps.append({"index": i, "id": sid, "deps": deps, "raw": raw, "entrypoint": entrypoint,
                          "timeout": _duration(raw.get("timeout"), f"steps[{i}]")})
            ids.append(sid)
        return steps

    def _entrypoint(self, image: str, i: int, sid: str) -> str:
        """The image's default entrypoint on this machine ('' = none); an image that cannot
        run here is an error naming it."""
        bare = re.sub(r"(@sha256:[0-9a-f]+|:[^/:@]+)$", "", image)
        for key in (image, bare):
            if key in self.ctx.image_map:
                return self.ctx.image_map[key]
        if PYTHON_IMAGE.match(image):
            return ""
        short = bare.removeprefix("docker.io/").removeprefix("library/")
        if short in HOST_IMAGES:
            return HOST_IMAGES[short]
        if bare in GOOGLE_BUILDERS:
            return GOOGLE_BUILDERS[bare]
        raise CIUsageError(f"steps[{i}] ({sid}): builder image {image} cannot run locally; map it to a "
                           f"command on this machine with --map-image {bare}=ENTRYPOINT")

    def run(self) -> dict:
        steps = self.plan()
        records = {s["id"]: self.ctx.new_step(self._label(s), id=s["id"], image=s["raw"]["name"],
                                              wait_for=s["deps"]) for s in steps}
        done: dict[str, str] = {}
        futures: dict[Future, str] = {}
        pending = list(steps)
        with ThreadPoolExecutor(max_workers=max(1, len(steps))) as pool:
            while pending or futures:
                if not self.failed.is_set():
                    for s in list(pending):
                        if all(d in done for d in s["deps"]):
                            pending.remove(s)
                            futures[pool.submit(self.run_step, s, records[s["id"]])] = s["id"]
                if not futures:
                    break
                finished, _ = wait(list(futures), return_when=FIRST_COMPLETED)
                for f in finished:
                    sid = futures.pop(f)
                    done[sid] = f.result()
                    if done[sid] == FAILED and not self.failed.is_set():
                        self.failed.set()
                        self.cancel_reason = sid
                        with self.lock:
                            for marker in self.running.values():
                                reap(STEP_MARKER, marker, grace=1.0)
        for s in pending:
            self.ctx.reporter.finish(records[s["id"]], SKIPPED, message=f"not started: {self.cancel_reason} failed")
        self._artifacts()
        return {"result": "failed" if self.failed.is_set() else "succeeded",
                "substitutions": {k: v for k, v in self.values.items() if k.startswith("_") or k in BUILTINS},
                **({"artifacts": self.collected} if getattr(self, "collected", None) else {})}

    def _label(self, s: dict) -> str:
        raw = s["raw"]
        if raw.get("id"):
            return str(raw["id"])
        what = raw.get("script") or " ".join(str(a) for a in ([raw.get("entrypoint")] if raw.get("entrypoint") else [])
                                             + list(raw.get("args") or []))
        lines = [ln for ln in str(what).strip().splitlines() if ln.strip() and not ln.startswith("#!")]
        first = lines[0] if lines else raw["name"]
        return f"#{s['index']} {first[:60]}"

    def run_step(self, s: dict, rec) -> str:
        raw = s["raw"]
        if self.failed.is_set():
            self.ctx.reporter.finish(rec, SKIPPED, message=f"not started: {self.cancel_reason} failed")
            return SKIPPED
        marker = uuid.uuid4().hex
        with self.lock:
            self.running[s["id"]] = marker
        self.ctx.reporter.start(rec)
        env = dict(self.ctx.env)
        env[STEP_MARKER] = marker
        env["BUILDER_OUTPUT"] = str(self.ctx.workspace.parent / "builder" / "outputs")
        Path(env["BUILDER_OUTPUT"]).mkdir(parents=True, exist_ok=True)
        automap = raw.get("automapSubstitutions", self.options.get("automapSubstitutions", False))
        if automap:
            env.update({k: v for k, v in self.values.items()})
        for item in list(self.options.get("env") or []) + list(raw.get("env") or []):
            key, sep, value = str(item).partition("=")
            if not sep:
                self.ctx.reporter.finish(rec, FAILED, message=f"env entry {item!r} is not KEY=VALUE")
                return FAILED
            env[key] = value
        for var in list(self.options.get("secretEnv") or []) + list(raw.get("secretEnv") or []):
            env[str(var)] = self.secrets[str(var)]
        cwd = self.ctx.workspace / str(raw.get("dir") or "")
        cwd.mkdir(parents=True, exist_ok=True)  # Cloud Build creates a missing dir
        if "script" in raw:
            script = self.ctx.workspace.parent / f"script-{s['index']}"
            text = str(raw["script"])
            script.write_text(text if text.endswith("\n") else text + "\n")
            script.chmod(0o755)
            argv = [str(script)] if text.startswith("#!") else ["/bin/sh", str(script)]
        else:
            entry = str(raw.get("entrypoint") or s["entrypoint"] or "")
            argv = ([entry] if entry else []) + [str(a) for a in raw.get("args") or []]
        if not argv:
            self.ctx.reporter.finish(rec, FAILED, message="nothing to run (no entrypoint, args or script)")
            return FAILED
        header = f"[{s['id']}] image {raw['name']} (on this machine): {' '.join(argv)}"
        started = time.monotonic()
        try:
            rc = run_logged(argv, cwd=cwd, env=env, step=rec, reporter=self.ctx.reporter, timeout=s["timeout"],
                            header=header, mask=self.ctx.mask)
        except FileNotFoundError as exc:
            with self.ctx.open_log(rec) as log:
                log.write(f"{exc}\n")
            rc = 127
        finally:
            reap(STEP_MARKER, marker)  # the step's "container" ends: so does what it started
            with self.lock:
                self.running.pop(s["id"], None)
        if self.failed.is_set() and self.cancel_reason != s["id"] and rc != 0:
            rec.duration = time.monotonic() - started
            self.ctx.reporter.finish(rec, SKIPPED, rc, f"cancelled: {self.cancel_reason} failed")
            return SKIPPED
        allowed = [int(c) for c in raw.get("allowExitCodes") or []]
        if rc == 0 or rc in allowed:
            self.ctx.reporter.finish(rec, PASSED, rc)
            return PASSED
        message = "timed out" if rc == 124 and s["timeout"] else f"exit status {rc}"
        if raw.get("allowFailure"):
            self.ctx.reporter.finish(rec, WARNING, rc, message + " (allowFailure)")
            return WARNING
        self.ctx.reporter.finish(rec, FAILED, rc, message)
        return FAILED

    def _artifacts(self) -> None:
        self.collected: dict[str, Any] = {}
        arts = self.build.get("artifacts") or {}
        for kind in ("objects", "pythonPackages", "mavenArtifacts", "npmPackages"):
            spec = arts.get(kind)
            if not spec:
                continue
            specs = spec if isinstance(spec, list) else [spec]
            for j, one in enumerate(specs):
                dest = self.ctx.out_dir / "artifacts" / f"{kind}-{j}"
                paths = one.get("paths") or ([one.get("path")] if one.get("path") else [])
                files = artifacts.collect(self.ctx.workspace, [str(p) for p in paths], dest)
                self.collected[f"{kind}-{j}"] = {"location": one.get("location") or one.get("repository"),
                                                 "path": str(dest), "files": files}
        if self.build.get("images"):
            self.ctx.reporter.note("images: not pushed locally: " + ", ".join(map(str, self.build["images"])))


def run(ctx: Context, path: Path) -> dict:
    doc = _load(path)
    rel = str(path.relative_to(ctx.workspace))
    build, sub = resolve_substitutions(ctx, doc, rel)
    return Scheduler(ctx, build, sub.values).run()
