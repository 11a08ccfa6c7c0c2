"""Azure Pipelines YAML run locally.

* Compile time (azure_template): `${{ }}` expressions, `template:` references, `extends`,
  `parameters` (a `--var` whose name is a parameter sets it).
* Structure: `stages` / `jobs` / `steps` (the last two get an implicit stage/job); stages in
  `dependsOn` order (default: the previous stage), jobs in `dependsOn` order (default: none),
  `strategy.matrix` jobs expanded; deployment jobs with the `runOnce` strategy (preDeploy,
  deploy, routeTraffic, postRouteTraffic, then on.failure / on.success).
* `condition` (default `succeeded()`) evaluated by mlops_gen.azure_expressions with `succeeded()`, `failed()`,
  `succeededOrFailed()`, `always()`, `canceled()`, `variables[...]`, `dependencies.X.result`,
  `dependencies.X.outputs['step.var']`, `stageDependencies...`.
* Variables: pipeline, stage, job (map and list forms, `group` from --secrets
  `variable-groups`), `--var` on top, predefined variables from git; `$(var)` macros in
  scripts, inputs and env (unknown ones left as written, as the agent does); every
  non-secret variable is in the environment as NAME_IN_UPPER_CASE with `.` → `_`;
  `$[ ]` runtime expressions in variable values.
* Logging commands: `##vso[task.setvariable variable=..;isOutput=..;isSecret=..]`,
  `##vso[task.prependpath]`, `##vso[task.complete result=..]`, `##vso[task.logissue]`.
* Steps: `script`, `bash` (bash --noprofile --norc, like the agent), `pwsh`/`powershell`
  when pwsh is installed, `checkout` and `download` (nothing to do: the sources are the
  workspace), `publish` (copied to .local-ci/azure/artifacts/), and the tasks in TASKS. Any
  other task is an error (exit 2) naming it, before anything runs.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
import shlex
import shutil
import sys
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mlops_gen.azure_expressions import CIDict, Evaluator, ExprError, to_str, truthy

from . import artifacts
from .azure_template import Expander, load_yaml
from .errors import CIUsageError
from .report import FAILED, PASSED, WARNING
from .runtime import Context, run_logged

SUCCEEDED, ISSUES, FAILED_R, SKIPPED_R, CANCELED = (
    "Succeeded", "SucceededWithIssues", "Failed", "Skipped", "Canceled")
_MACRO = re.compile(r"\$\(([A-Za-z0-9_][A-Za-z0-9_.\-]*)\)")
_VSO = re.compile(r"##vso\[([A-Za-z.]+)([^\]]*)\](.*)$")
RUNONCE_HOOKS = ("preDeploy", "deploy", "routeTraffic", "postRouteTraffic")


def env_name(variable: str) -> str:
    return re.sub(r"[.\s]", "_", variable).upper()


# -- tasks -------------------------------------------------------------------------------------
def _task_key(ref: str) -> tuple[str, str]:
    name, _, major = str(ref).partition("@")
    return name.strip().lower(), major.strip()


TASKS = {  # name -> supported major versions
    "usepythonversion": {"0"},
    "azurecli": {"2"},
    "publishtestresults": {"2"},
    "cache": {"2"},
    "bash": {"3"},
    "cmdline": {"2"},
    "pythonscript": {"0"},
    "publishpipelineartifact": {"1"},
    "publishbuildartifacts": {"1"},
    "downloadpipelineartifact": {"2"},
    "downloadbuildartifacts": {"0", "1"},
    "copyfiles": {"2"},
}


# -- model -------------------------------------------------------------------------------------
@dataclass
class Job:
    name: str
    display: str
    spec: dict
    depends: list[str]
    condition: str
    variables: Any
    deployment: bool = False
    matrix_vars: dict = field(default_factory=dict)
    origin: str = ""  # the job a matrix instance was expanded from
    result: str = ""
    outputs: dict = field(default_factory=dict)


@dataclass
class Stage:
    name: str
    display: str
    spec: dict
    depends: list[str]
    condition: str
    variables: Any
    jobs: list[Job]
    result: str = ""


def _depends(value: Any, default: list[str]) -> list[str]:
    if value is None:
        return default
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


def _ordered(items: list, kind: str) -> list:
    """Topological order of stages/jobs (stable: file order among the ready ones)."""
    names = {i.name for i in items}
    for i in items:
        for d in i.depends:
            if d not in names:
                raise CIUsageError(f"{kind} {i.name!r} depends on unknown {kind} {d!r}")
    done: list = []
    remaining = list(items)
    while remaining:
        ready = [i for i in remaining if all(d in {x.name for x in done} for d in i.depends)]
        if not ready:
            raise CIUsageError(f"{kind}s have a dependency cycle: {', '.join(i.name for i in remaining)}")
        done.append(ready[0])
        remaining.remove(ready[0])
    return done


def build_model(doc: dict) -> list[Stage]:
    if "stages" in doc:
        raw_stages = doc["stages"] or []
    elif "jobs" in doc:
        raw_stages = [{"stage": "__default", "jobs": doc["jobs"]}]
    elif "steps" in doc:
        job = {k: doc[k] for k in ("steps", "pool", "container", "services", "workspace", "strategy",
                                    "timeoutInMinutes") if k in doc}
        raw_stages = [{"stage": "__default", "jobs": [{"job": "Job", **job}]}]
    else:
        raise CIUsageError("the pipeline has no stages, jobs or steps")
    stages: list[Stage] = []
    for i, s in enumerate(raw_stages):
        if not isinstance(s, dict) or "stage" not in s:
            raise CIUsageError(f"stages[{i}]: expected a stage (or a template reference)")
        name = str(s["stage"])
        prev = [stages[-1].name] if stages else []
        jobs = []
        for j, js in enumerate(s.get("jobs") or []):
            if not isinstance(js, dict) or not ({"job", "deployment"} & set(js)):
                raise CIUsageError(f"stage {name}: jobs[{j}]: expected a job or deployment")
            deployment = "deployment" in js
            jname = str(js.get("deployment") if deployment else js.get("job") or f"Job{j + 1}")
            base = Job(jname, str(js.get("displayName") or jname), js, _depends(js.get("dependsOn"), []),
                       str(js.get("condition") or "succeeded()"), js.get("variables"), deployment)
            matrix = (js.get("strategy") or {}).get("matrix") if not deployment else None
            if isinstance(matrix, dict) and matrix:
                for key, mvars in matrix.items():
                    jobs.append(Job(f"{jname}_{key}", f"{base.display} {key}", js, base.depends, base.condition,
                                    base.variables, False, {str(k): to_str(v) for k, v in (mvars or {}).items()},
                                    origin=jname))
            else:
                jobs.append(base)
        # a dependency on a matrix job means on all of its instances
        for job in jobs:
            job.depends = [x for d in job.depends
                           for x in ([k.name for k in jobs if k.origin == d] if d not in {k.name for k in jobs} else [d])]
        stages.append(Stage(name, str(s.get("displayName") or name), s, _depends(s.get("dependsOn"), prev),
                            str(s.get("condition") or "succeeded()"), s.get("variables"), _ordered(jobs, "job")))
    return _ordered(stages, "stage")


def job_steps(job: Job) -> list[tuple[str, dict]]:
    """(hook, step) pairs of a job, for validation."""
    if not job.deployment:
        return [("", s) for s in job.spec.get("steps") or []]
    out = []
    strategy = job.spec.get("strategy") or {}
    if set(strategy) - {"runOnce"}:
        raise CIUsageError(f"deployment {job.name}: strategy {', '.join(strategy)} is not supported "
                           "locally (only runOnce)")
    run_once = strategy.get("runOnce") or {}
    for hook in RUNONCE_HOOKS:
        out += [(hook, s) for s in (run_once.get(hook) or {}).get("steps") or []]
    for hook in ("failure", "success"):
        out += [(f"on.{hook}", s) for s in ((run_once.get("on") or {}).get(hook) or {}).get("steps") or []]
    return out


def validate(stages: list[Stage]) -> None:
    for stage in stages:
        for job in stage.jobs:
            for hook, step in job_steps(job):
                where = f"stage {stage.name}, job {job.name}" + (f", {hook}" if hook else "")
                if not isinstance(step, dict):
                    raise CIUsageError(f"{where}: a step must be a mapping, got {step!r}")
                if "task" in step:
                    name, major = _task_key(step["task"])
                    if name not in TASKS or major not in TASKS[name]:
                        raise CIUsageError(f"{where}: task {step['task']} has no local equivalent "
                                           f"(supported: {', '.join(sorted(f'{n}@{v}' for n, vs in TASKS.items() for v in vs))})")
                elif not ({"script", "bash", "pwsh", "powershell", "checkout", "download", "publish",
                           "downloadBuild", "getPackage"} & set(step)) and "template" not in step:
                    raise CIUsageError(f"{where}: unknown step kind {sorted(step)}")
                elif "template" in step:
                    raise CIUsageError(f"{where}: template {step['template']} was not expanded")


# -- running -----------------------------------------------------------------------------------
class Runner:
    def __init__(self, ctx: Context, path: Path):
        self.ctx = ctx
        self.path = path
        self.tmp = ctx.workspace.parent
        self.outputs: dict[str, dict[str, dict[str, str]]] = {}  # stage -> job -> {step.var: value}
        self.results: dict[str, dict[str, str]] = {}  # stage -> job -> result
        self.secrets_seen: set[str] = set()
        self.collected: dict[str, list[str]] = {}
        self.build_id = str(uuid.uuid4().int % 100000)

    # variables ---------------------------------------------------------------------------
    def predefined(self) -> CIDict:
        g, ws, tmp = self.ctx.git, str(self.ctx.workspace), self.tmp
        ref = f"refs/tags/{g.tag}" if g.tag and not g.branch else f"refs/heads/{g.branch or 'main'}"
        for d in ("a", "b", "_temp", "TestResults", "_tool"):
            (tmp / d).mkdir(exist_ok=True)
        today = datetime.date.today().strftime("%Y%m%d")
        return CIDict({
            "Build.SourceBranch": ref,
            "Build.SourceBranchName": ref.rsplit("/", 1)[-1],
            "Build.SourceVersion": g.sha,
            "Build.SourceVersionMessage": g.message,
            "Build.SourcesDirectory": ws,
            "Build.Repository.LocalPath": ws,
            "Build.Repository.Name": g.repo_name,
            "Build.Repository.Uri": g.remote_url,
            "Build.Repository.Provider": "Git",
            "Build.BuildId": self.build_id,
            "Build.BuildNumber": f"{today}.1",
            "Build.DefinitionName": g.repo_name,
            "Build.Reason": "Manual",
            "Build.RequestedFor": g.author,
            "Build.RequestedForEmail": g.author_email,
            "Build.ArtifactStagingDirectory": str(tmp / "a"),
            "Build.StagingDirectory": str(tmp / "a"),
            "Build.BinariesDirectory": str(tmp / "b"),
            "System.ArtifactsDirectory": str(tmp / "a"),
            "Common.TestResultsDirectory": str(tmp / "TestResults"),
            "System.DefaultWorkingDirectory": ws,
            "System.TeamProject": "local",
            "System.TeamFoundationCollectionUri": "https://dev.azure.com/local/",
            "System.CollectionUri": "https://dev.azure.com/local/",
            "System.DefinitionId": "1",
            "System.Debug": "false",
            "System.StageAttempt": "1",
            "System.JobAttempt": "1",
            "Pipeline.Workspace": str(tmp),
            "Agent.BuildDirectory": str(tmp),
            "Agent.TempDirectory": str(tmp / "_temp"),
            "Agent.ToolsDirectory": str(tmp / "_tool"),
            "Agent.WorkFolder": str(tmp),
            "Agent.OS": "Linux",
            "Agent.OSArchitecture": "X64",
            "Agent.Name": "local",
            "Agent.MachineName": "local",
            "Agent.HomeDirectory": str(tmp),
            **self.ctx.trigger.predefined,  # Build.Reason, System.PullRequest.* of the event
        })

    def add_variables(self, store: CIDict, spec: Any, where: str, evaluator_roots: dict | None = None) -> None:
        items: list[tuple[str, Any]] = []
        if isinstance(spec, dict):
            items = list(spec.items())
        elif isinstance(spec, list):
            for item in spec:
                if not isinstance(item, dict):
                    raise CIUsageError(f"{where}: variables entries must be mappings")
                if "group" in item:
                    groups = self.ctx.secrets.get("variable-groups") or {}
                    if item["group"] not in groups:
                        raise CIUsageError(f"{where}: variable group {item['group']!r} cannot be read offline; "
                                           "give its values under variable-groups in the --secrets file")
                    items += list((groups[item["group"]] or {}).items())
                elif "name" in item:
                    items.append((item["name"], item.get("value")))
                else:
                    raise CIUsageError(f"{where}: variables entry {item} has no name or group")
        elif spec is not None:
            raise CIUsageError(f"{where}: variables must be a mapping or a list")
        for name, value in items:
            value = to_str(value)
            m = re.fullmatch(r"\s*\$\[(.*)\]\s*", value, re.DOTALL)
            if m:
                try:
                    value = to_str(Evaluator({"variables": store, **(evaluator_roots or {})}).evaluate(m.group(1)))
                except ExprError as exc:
                    raise CIUsageError(f"{where}: variable {name}: {exc}") from exc
            store[str(name)] = value
        store.update(self.ctx.variables)  # --var wins over the file at every level
        for name, _ in items:  # then $(x) references resolve against the final values
            if str(name) not in self.ctx.variables:
                store[str(name)] = self.macro(to_str(store[str(name)]), store)

    @staticmethod
    def macro(text: str, variables: CIDict) -> str:
        return _MACRO.sub(lambda m: to_str(variables[m.group(1)]) if m.group(1) in variables else m.group(0), text)

    def environment(self, variables: CIDict, step_env: dict | None) -> dict[str, str]:
        env = dict(self.ctx.env)
        env["TF_BUILD"] = "True"
        for name, value in variables.items():
            if name.lower() not in self.secrets_seen:
                env[env_name(name)] = to_str(value)
        for k, v in (step_env or {}).items():
            env[str(k)] = self.macro(to_str(v), variables)
        return env

    # orchestration -----------------------------------------------------------------------
    def run(self, stages: list[Stage], pipeline_vars: Any) -> dict:
        base = self.predefined()
        base.update(self.ctx.variables)
        self.add_variables(base, pipeline_vars, "variables")
        stage_results: dict[str, str] = {}
        for stage in stages:
            status = self._status_fns(stage.depends, stage_results)
            roots = {"variables": base, "dependencies": self._stage_deps(stage_results),
                     "stageDependencies": self._stage_deps(stage_results)}
            if not self._condition(stage.condition, roots, status, f"stage {stage.name}"):
                stage.result = SKIPPED_R
                for job in stage.jobs:
                    self._skip_job(stage, job, "stage condition is false")
                stage_results[stage.name] = SKIPPED_R
                continue
            svars = base.copy()
            svars["System.StageName"] = stage.name
            svars["System.StageDisplayName"] = stage.display
            self.add_variables(svars, stage.variables, f"stage {stage.name}",
                               {"stageDependencies": self._stage_deps(stage_results)})
            job_results: dict[str, str] = {}
            self.results[stage.name] = job_results
            for job in stage.jobs:
                jstatus = self._status_fns(job.depends, job_results)
                jroots = {"variables": svars, "dependencies": self._job_deps(stage.name, job_results),
                          "stageDependencies": self._stage_deps(stage_results)}
                if not self._condition(job.condition, jroots, jstatus, f"job {job.name}"):
                    job_results[job.name] = SKIPPED_R
                    self._skip_job(stage, job, "condition is false")
                    continue
                job_results[job.name] = self.run_job(stage, job, svars, jroots)
            stage.result = _aggregate(job_results.values())
            stage_results[stage.name] = stage.result
        overall = _aggregate(stage_results.values())
        return {
            "result": {SUCCEEDED: "succeeded", ISSUES: "partiallySucceeded", SKIPPED_R: "succeeded"}.get(
                overall, "failed"),
            "stages": {s.name: {"result": s.result, "jobs": self.results.get(s.name, {})} for s in stages},
            **({"artifacts": self.collected} if self.collected else {}),
        }

    def _stage_deps(self, stage_results: dict[str, str]) -> dict:
        return {s: {"result": r, "outputs": {f"{j}.{k}": v for j, o in self.outputs.get(s, {}).items()
                                             for k, v in o.items()}, **{j: {"outputs": o, "result": self.results.get(s, {}).get(j)}
                                                                        for j, o in self.outputs.get(s, {}).items()}}
                for s, r in stage_results.items()}

    def _job_deps(self, stage: str, job_results: dict[str, str]) -> dict:
        return {j: {"result": r, "outputs": self.outputs.get(stage, {}).get(j, {})} for j, r in job_results.items()}

    def _status_fns(self, depends: list[str], results: dict[str, str]) -> dict:
        def pick(names):
            return [results.get(n, SKIPPED_R) for n in (names or depends)]

        return {
            "succeeded": lambda *n: all(r in (SUCCEEDED, ISSUES) for r in pick(n)),
            "failed": lambda *n: any(r == FAILED_R for r in pick(n)),
            "succeededorfailed": lambda *n: all(r in (SUCCEEDED, ISSUES, FAILED_R) for r in pick(n)),
            "canceled": lambda *n: False,
        }

    def _condition(self, condition: str, roots: dict, status: dict, where: str) -> bool:
        try:
            return truthy(Evaluator(roots, status).evaluate(condition))
        except ExprError as exc:
            raise CIUsageError(f"{where}: condition {condition!r}: {exc}") from exc

    def _skip_job(self, stage: Stage, job: Job, reason: str) -> None:
        for hook, step in job_steps(job):
            self.ctx.reporter.skip(self._label(stage, job, step, hook), reason, stage=stage.name, job=job.name)

    def _label(self, stage: Stage, job: Job, step: dict, hook: str = "") -> str:
        title = step.get("displayName") or step.get("name") or step.get("task") or next(
            (f"{k}: {to_str(step[k]).strip().splitlines()[0] if to_str(step[k]).strip() else ''}"
             for k in ("script", "bash", "pwsh", "powershell", "checkout", "download", "publish") if k in step), "step")
        parts = [p for p in (None if stage.name == "__default" else stage.name,
                             None if job.name == "Job" else job.name, hook or None) if p]
        return "/".join(parts + [str(title)[:70]])

    def run_job(self, stage: Stage, job: Job, svars: CIDict, roots: dict) -> str:
        jvars = svars.copy()
        jvars["System.JobName"] = job.name
        jvars["System.JobDisplayName"] = job.display
        jvars["Agent.JobName"] = job.display
        jvars["System.PhaseName"] = job.name
        jvars["System.JobId"] = str(uuid.uuid4())
        self.add_variables(jvars, job.variables, f"job {job.name}",
                           {k: v for k, v in roots.items() if k != "variables"})
        jvars.update(job.matrix_vars)
        jvars.update(self.ctx.variables)
        if job.deployment:
            env_spec = job.spec.get("environment")
            jvars["Environment.Name"] = to_str(env_spec.get("name") if isinstance(env_spec, dict) else env_spec)
            jvars["Strategy.Name"] = "runOnce"
        state = {"status": SUCCEEDED, "path": [], "outputs": {}}
        self.outputs.setdefault(stage.name, {})[job.name] = state["outputs"]
        timeout = job.spec.get("timeoutInMinutes")
        if not job.deployment:
            self._run_steps(stage, job, job.spec.get("steps") or [], jvars, state, "", timeout)
        else:
            run_once = (job.spec.get("strategy") or {}).get("runOnce") or {}
            for hook in RUNONCE_HOOKS:
                self._run_steps(stage, job, (run_once.get(hook) or {}).get("steps") or [], jvars, state, hook, timeout)
            on = run_once.get("on") or {}
            taken = "failure" if state["status"] == FAILED_R else "success"
            for which in ("failure", "success"):
                steps = (on.get(which) or {}).get("steps") or []
                if which == taken:  # the hook's steps see their own status (a fresh succeeded())
                    hook_state = {**state, "status": SUCCEEDED}
                    self._run_steps(stage, job, steps, jvars, hook_state, f"on.{which}", timeout)
                    if hook_state["status"] == FAILED_R:
                        state["status"] = FAILED_R
                else:
                    for step in steps:
                        self.ctx.reporter.skip(self._label(stage, job, step, f"on.{which}"),
                                               f"runs on {which} only", stage=stage.name, job=job.name)
        return state["status"]

    def _run_steps(self, stage: Stage, job: Job, steps: list, jvars: CIDict, state: dict, hook: str,
                   job_timeout: Any) -> None:
        for step in steps:
            label = self._label(stage, job, step, hook)
            if step.get("enabled") is False or to_str(step.get("enabled")).lower() == "false":
                self.ctx.reporter.skip(label, "enabled: false", stage=stage.name, job=job.name)
                continue
            jvars["Agent.JobStatus"] = state["status"]
            status = {
                "succeeded": lambda *n: state["status"] in (SUCCEEDED, ISSUES),
                "failed": lambda *n: state["status"] == FAILED_R,
                "succeededorfailed": lambda *n: True,
                "canceled": lambda *n: False,
            }
            cond = str(step.get("condition") or "succeeded()")
            if not self._condition(cond, {"variables": jvars}, status, label):
                self.ctx.reporter.skip(label, f"condition {cond} is false", stage=stage.name, job=job.name)
                continue
            result = self.run_step(label, step, jvars, state, stage, job, job_timeout)
            if result == FAILED_R:
                if truthy(step.get("continueOnError")) and to_str(step.get("continueOnError")).lower() != "false":
                    state["status"] = ISSUES if state["status"] != FAILED_R else FAILED_R
                else:
                    state["status"] = FAILED_R
            elif result == ISSUES and state["status"] == SUCCEEDED:
                state["status"] = ISSUES

    def run_step(self, label: str, step: dict, jvars: CIDict, state: dict, stage: Stage, job: Job,
                 job_timeout: Any) -> str:
        ctx = self.ctx
        s = ctx.new_step(label, stage=stage.name, job=job.name, kind=_kind(step))
        ctx.reporter.start(s)
        retries = int(to_str(step.get("retryCountOnTaskFailure") or 0) or 0)
        timeout = step.get("timeoutInMinutes") or job_timeout
        timeout = float(timeout) * 60 if timeout and float(timeout) > 0 else None
        attempt, result, message = 0, FAILED_R, ""
        while True:
            result, message = self._execute(s, step, jvars, state, timeout)
            if result != FAILED_R or attempt >= retries:
                break
            attempt += 1
            with self.ctx.open_log(s) as log:
                log.write(f"\n[local-ci] retrying ({attempt} of {retries}, retryCountOnTaskFailure)\n")
        continue_on_error = truthy(step.get("continueOnError")) and to_str(step.get("continueOnError")).lower() != "false"
        status = {SUCCEEDED: PASSED, ISSUES: WARNING, FAILED_R: WARNING if continue_on_error else FAILED}[result]
        ctx.reporter.finish(s, status, s.exit_code, message)
        return result

    # steps ---------------------------------------------------------------------------------
    def _execute(self, s, step: dict, jvars: CIDict, state: dict, timeout: float | None) -> tuple[str, str]:
        kind = _kind(step)
        inputs = {str(k): self.macro(to_str(v), jvars) for k, v in (step.get("inputs") or {}).items()}
        workdir = self.macro(to_str(step.get("workingDirectory") or ""), jvars)
        if kind in ("script", "bash"):
            return self._shell(s, self.macro(to_str(step[kind]), jvars), step, jvars, state, timeout, workdir,
                               truthy(step.get("failOnStderr")) and to_str(step.get("failOnStderr")).lower() != "false")
        if kind in ("pwsh", "powershell"):
            if not shutil.which("pwsh"):
                raise CIUsageError(f"{s.name}: a {kind} step needs PowerShell (pwsh), which is not installed")
            return self._shell(s, self.macro(to_str(step[kind]), jvars), step, jvars, state, timeout, workdir,
                               False, interpreter=["pwsh", "-NoLogo", "-NoProfile", "-NonInteractive", "-File"], suffix=".ps1")
        if kind in ("checkout", "download", "downloadBuild", "getPackage"):
            self._note(s, f"{kind}: {to_str(step[kind])}: nothing to do locally (the sources are the workspace)")
            return SUCCEEDED, ""
        if kind == "publish":
            return self._publish(s, self.macro(to_str(step["publish"]), jvars), to_str(step.get("artifact") or "drop"))
        name, _ = _task_key(step["task"])
        return getattr(self, f"_task_{name}")(s, inputs, step, jvars, state, timeout, workdir)

    def _note(self, s, text: str) -> None:
        with self.ctx.open_log(s) as log:
            log.write(text + "\n")
        self.ctx.reporter.line(s, text)

    def _shell(self, s, script: str, step: dict, jvars: CIDict, state: dict, timeout, workdir: str,
               fail_on_stderr: bool, interpreter: list[str] | None = None, suffix: str = ".sh",
               arguments: str = "") -> tuple[str, str]:
        path = self.tmp / "_temp" / f"{uuid.uuid4()}{suffix}"
        path.write_text(script + "\n")
        argv = (interpreter or ["bash", "--noprofile", "--norc"]) + [str(path)] + shlex.split(arguments)
        return self._process(s, argv, step, jvars, state, timeout, workdir, fail_on_stderr)

    def _process(self, s, argv, step, jvars, state, timeout, workdir, fail_on_stderr=False) -> tuple[str, str]:
        env = self.environment(jvars, step.get("env"))
        env["PATH"] = ":".join(state["path"] + [env.get("PATH", "")])
        completed: list[str] = []
        errors: list[str] = []
        stderr_seen = []

        def on_line(text: str) -> None:
            self._logging_command(text, step, jvars, state, completed, errors)

        cwd = Path(workdir) if workdir else self.ctx.workspace
        if not cwd.is_absolute():
            cwd = self.ctx.workspace / cwd
        if not cwd.is_dir():
            self._note(s, f"##[error]working directory {cwd} does not exist")
            return FAILED_R, f"working directory {workdir} does not exist"
        rc = run_logged(argv, cwd=cwd, env=env, step=s, reporter=self.ctx.reporter, on_line=on_line,
                        timeout=timeout, stderr_seen=stderr_seen if fail_on_stderr else None, mask=self.ctx.mask)
        s.exit_code = rc
        if completed:
            result = {"succeeded": SUCCEEDED, "succeededwithissues": ISSUES, "failed": FAILED_R,
                      "canceled": FAILED_R, "skipped": SUCCEEDED}.get(completed[-1].lower(), FAILED_R)
            return result, f"task.complete result={completed[-1]}"
        if rc != 0:
            return FAILED_R, ("timed out" if rc == 124 and timeout else f"exit status {rc}")
        if stderr_seen:
            return FAILED_R, "wrote to stderr (failOnStderr)"
        return SUCCEEDED, ""

    def _logging_command(self, text: str, step: dict, jvars: CIDict, state: dict, completed: list, errors: list) -> None:
        m = _VSO.search(text)
        if not m:
            return
        area, props_text, value = m.group(1).lower(), m.group(2).strip(), m.group(3)
        props = {}
        for part in props_text.split(";"):
            if "=" in part:
                k, _, v = part.partition("=")
                props[k.strip().lower()] = v.strip()
        if area == "task.setvariable":
            name = props.get("variable")
            if not name:
                return
            secret = props.get("issecret", "false").lower() == "true"
            output = props.get("isoutput", "false").lower() == "true"
            if secret:
                self.secrets_seen.add(name.lower())
                self.ctx.mask.add(value)
            step_name = step.get("name")
            if output and step_name:
                state["outputs"][f"{step_name}.{name}"] = value
                jvars[f"{step_name}.{name}"] = value
            else:
                jvars[name] = value
        elif area == "task.prependpath":
            state["path"].insert(0, value.strip())
        elif area == "task.complete":
            completed.append(props.get("result", "Succeeded"))
        elif area == "task.logissue" and props.get("type", "").lower() == "error":
            errors.append(value)

    def _publish(self, s, path: str, artifact: str) -> tuple[str, str]:
        src = Path(path)
        src = src if src.is_absolute() else self.ctx.workspace / src
        if not src.exists():
            self._note(s, f"##[error]Path does not exist: {src}")
            return FAILED_R, f"path {path} does not exist"
        dest = self.ctx.out_dir / "artifacts" / artifact
        if src.is_dir():
            files = artifacts.collect(src, ["**/*"], dest)
        else:
            dest.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / src.name)
            files = [src.name]
        self.collected.setdefault(artifact, []).extend(files)
        self._note(s, f"published {len(files)} file(s) as artifact {artifact!r} to {dest}")
        return SUCCEEDED, ""

    # tasks -------------------------------------------------------------------------------------
    def _task_usepythonversion(self, s, inputs, step, jvars, state, timeout, workdir):
        spec = inputs.get("versionSpec", "3.x")
        have = f"{sys.version_info.major}.{sys.version_info.minor}"
        ok = spec in ("3.x", "3") or have == spec or have.startswith(spec + ".") or spec.startswith(have + ".") or (
            spec.endswith(".x") and have.startswith(spec[:-1]))
        self._note(s, f"UsePythonVersion {spec}: using the run's Python {sys.version.split()[0]} "
                      f"({self.ctx.python})" + ("" if ok else " — does not match the requested version"))
        return (SUCCEEDED if ok else ISSUES), ("" if ok else f"Python {have} instead of {spec}")

    def _task_azurecli(self, s, inputs, step, jvars, state, timeout, workdir):
        script_type = inputs.get("scriptType", "bash").lower()
        if script_type not in ("bash",):
            raise CIUsageError(f"{s.name}: AzureCLI@2 scriptType {script_type} cannot run locally (use bash)")
        location = inputs.get("scriptLocation", "scriptPath" if "scriptPath" in inputs else "inlineScript")
        self._note(s, "AzureCLI@2: running the script locally without an Azure login "
                      f"(service connection {inputs.get('azureSubscription', '?')!r} not used)")
        fail = inputs.get("failOnStandardError", "false").lower() == "true"
        wd = inputs.get("workingDirectory") or workdir
        if location.lower() == "inlinescript":
            return self._shell(s, inputs.get("inlineScript", ""), step, jvars, state, timeout, wd, fail,
                               arguments=inputs.get("arguments", ""))
        path = self.ctx.workspace / inputs.get("scriptPath", "")
        return self._process(s, ["bash", str(path), *shlex.split(inputs.get("arguments", ""))], step, jvars, state,
                             timeout, wd, fail)

    def _task_bash(self, s, inputs, step, jvars, state, timeout, workdir):
        wd = inputs.get("workingDirectory") or workdir
        fail = inputs.get("failOnStderr", "false").lower() == "true"
        if inputs.get("targetType", "filePath").lower() == "inline":
            return self._shell(s, inputs.get("script", ""), step, jvars, state, timeout, wd, fail)
        path = self.ctx.workspace / inputs.get("filePath", "")
        return self._process(s, ["bash", "--noprofile", "--norc", str(path), *shlex.split(inputs.get("arguments", ""))],
                             step, jvars, state, timeout, wd, fail)

    def _task_cmdline(self, s, inputs, step, jvars, state, timeout, workdir):
        return self._shell(s, inputs.get("script", ""), step, jvars, state, timeout,
                           inputs.get("workingDirectory") or workdir, inputs.get("failOnStderr", "").lower() == "true")

    def _task_pythonscript(self, s, inputs, step, jvars, state, timeout, workdir):
        python = inputs.get("pythonInterpreter") or "python"
        wd = inputs.get("workingDirectory") or workdir
        if inputs.get("scriptSource", "filePath").lower() == "inline":
            return self._shell(s, inputs.get("script", ""), step, jvars, state, timeout, wd, False,
                               interpreter=[python], suffix=".py", arguments=inputs.get("arguments", ""))
        return self._process(s, [python, str(self.ctx.workspace / inputs.get("scriptPath", "")),
                                 *shlex.split(inputs.get("arguments", ""))], step, jvars, state, timeout, wd)

    def _task_cache(self, s, inputs, step, jvars, state, timeout, workdir):
        self._note(s, f"Cache@2 key={inputs.get('key', '')!r}: no cache locally (a miss)")
        return SUCCEEDED, ""

    def _task_publishtestresults(self, s, inputs, step, jvars, state, timeout, workdir):
        search = Path(inputs.get("searchFolder") or jvars["System.DefaultWorkingDirectory"])
        patterns = [p.strip() for p in re.split(r"[\n]", inputs.get("testResultsFiles", "**/TEST-*.xml")) if p.strip()]
        dest = self.ctx.out_dir / "test-results"
        files = artifacts.collect(search, [p for p in patterns if not p.startswith("!")], dest,
                                  exclude=[p[1:] for p in patterns if p.startswith("!")])
        failures = sum(_junit_failures(dest / f) for f in files)
        self._note(s, f"PublishTestResults@2: collected {len(files)} file(s) into {dest}; {failures} failed test(s)")
        self.collected.setdefault("test-results", []).extend(files)
        if not files:
            self._note(s, "##[warning]No test result files matching " + ", ".join(patterns))
        if failures and inputs.get("failTaskOnFailedTests", "false").lower() == "true":
            return FAILED_R, f"{failures} failed test(s)"
        if inputs.get("failTaskOnMissingResultsFile", "false").lower() == "true" and not files:
            return FAILED_R, "no test result files"
        return SUCCEEDED, ""

    def _task_publishpipelineartifact(self, s, inputs, step, jvars, state, timeout, workdir):
        path = inputs.get("targetPath") or inputs.get("path") or jvars["Pipeline.Workspace"]
        return self._publish(s, path, inputs.get("artifact") or inputs.get("artifactName") or "drop")

    def _task_publishbuildartifacts(self, s, inputs, step, jvars, state, timeout, workdir):
        path = inputs.get("PathtoPublish") or jvars["Build.ArtifactStagingDirectory"]
        return self._publish(s, path, inputs.get("ArtifactName") or "drop")

    def _task_downloadpipelineartifact(self, s, inputs, step, jvars, state, timeout, workdir):
        return self._download(s, inputs.get("artifact") or inputs.get("artifactName") or "",
                              inputs.get("targetPath") or inputs.get("path") or jvars["Pipeline.Workspace"])

    def _task_downloadbuildartifacts(self, s, inputs, step, jvars, state, timeout, workdir):
        return self._download(s, inputs.get("artifactName") or "",
                              inputs.get("downloadPath") or jvars["System.ArtifactsDirectory"])

    def _download(self, s, artifact: str, target: str) -> tuple[str, str]:
        root = self.ctx.out_dir / "artifacts"
        names = [artifact] if artifact else [p.name for p in root.iterdir()] if root.exists() else []
        for name in names:
            src = root / name
            if not src.exists():
                self._note(s, f"##[error]artifact {name!r} was not published earlier in this run")
                return FAILED_R, f"artifact {name} not found"
            base = Path(target)  # a relative targetPath is relative to the job's working directory
            dest = (base if base.is_absolute() else self.ctx.workspace / base) / (name if not artifact else "")
            shutil.copytree(src, dest, dirs_exist_ok=True)
        self._note(s, f"downloaded {', '.join(names) or 'nothing'} to {target}")
        return SUCCEEDED, ""

    def _task_copyfiles(self, s, inputs, step, jvars, state, timeout, workdir):
        source = Path(inputs.get("SourceFolder") or jvars["Build.SourcesDirectory"])
        patterns = [p.strip() for p in inputs.get("Contents", "**").splitlines() if p.strip()]
        target = Path(inputs["TargetFolder"]) if inputs.get("TargetFolder") else None
        if target is None:
            raise CIUsageError(f"{s.name}: CopyFiles@2 needs TargetFolder")
        files = artifacts.collect(source, [p for p in patterns if not p.startswith("!")], target,
                                  exclude=[p[1:] for p in patterns if p.startswith("!")],
                                  flatten=inputs.get("flattenFolders", "false").lower() == "true")
        self._note(s, f"copied {len(files)} file(s) to {target}")
        return SUCCEEDED, ""


def _kind(step: dict) -> str:
    for k in ("script", "bash", "pwsh", "powershell", "checkout", "download", "downloadBuild", "getPackage",
              "publish", "task"):
        if k in step:
            return k
    return "step"


def _junit_failures(path: Path) -> int:
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return 0
    suites = [root] if root.tag == "testsuite" else root.iter("testsuite")
    total = 0
    for suite in suites:
        total += int(suite.get("failures") or 0) + int(suite.get("errors") or 0)
    return total


def _aggregate(results) -> str:
    results = list(results)
    if any(r == FAILED_R for r in results):
        return FAILED_R
    if any(r == ISSUES for r in results):
        return ISSUES
    if results and all(r == SKIPPED_R for r in results):
        return SKIPPED_R
    return SUCCEEDED


def expanded_text(path: Path, variables: dict[str, str]) -> str:
    """The pipeline with its local templates expanded, as YAML text: what the environment set-up
    reads to find the extras the steps install (an install in a steps template is seen only here)."""
    try:
        doc = load_yaml(path)
        expanded = Expander(CIDict(variables), variables).pipeline(path, doc, {}) if isinstance(doc, dict) else doc
        return path.read_text(errors="replace") + "\n" + yaml.safe_dump(expanded, sort_keys=False)
    except (CIUsageError, ExprError, OSError, yaml.YAMLError):
        return path.read_text(errors="replace")  # the run itself reports what is wrong


def run(ctx: Context, path: Path) -> dict:
    doc = load_yaml(path)
    if not isinstance(doc, dict):
        raise CIUsageError(f"{path.name}: expected a mapping at the top level")
    # queue-time variables of the event (runReason for a queued run); --var still wins
    ctx = dataclasses.replace(ctx, variables={**ctx.trigger.variables, **ctx.variables})
    runner = Runner(ctx, path)
    compile_vars = runner.predefined()
    compile_vars.update(ctx.variables)
    declared = {str(p.get("name")) for p in doc.get("parameters") or [] if isinstance(p, dict)} | (
        set(doc["parameters"]) if isinstance(doc.get("parameters"), dict) else set())
    params = {**ctx.trigger.parameters, **{k: v for k, v in ctx.variables.items() if k in declared}}
    expanded = Expander(compile_vars, ctx.variables).pipeline(path, doc, params)
    for key in ("resources", "pool", "container", "services"):
        if key in expanded:
            ctx.reporter.note(f"{key}: ignored locally (steps run on this machine)")
    stages = build_model(expanded)
    validate(stages)
    result = runner.run(stages, expanded.get("variables"))
    result["parameters"] = {k: to_str(v) for k, v in params.items() if not isinstance(v, (dict, list))}
    return result
