"""Azure Pipelines: the vendored schema (after check-jsonschema's azure-pipelines transform), task
inputs, and the semantic rules."""

from __future__ import annotations

import re
from typing import Any

from check_jsonschema.transforms.azure_pipelines import AzurePipelinesDataError, azure_main

from mlops_gen.azure_expressions import check_condition
from mlops_gen.validate.azure_schema import is_dynamic, validator
from mlops_gen.validate.azure_tasks import check_task_step
from mlops_gen.validate.context import Context
from mlops_gen.validate.schemaerrors import leaf_errors, message_for
from mlops_gen.validate.shellrules import check_ignored_failures, source_position
from mlops_gen.validate.yamlpos import Key, key_of, locate

# A key marking where `${{ insert }}: ${{ parameters.x }}` (or similar) adds keys only known at
# compile time. check-jsonschema's transform drops such entries, leaving e.g. `matrix: {}`.
DYNAMIC = "__compile_time_keys__"
_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell")
_SCRIPT_INPUTS = ("script", "inlinescript", "inline", "arguments")
_REPO_SCRIPT = re.compile(
    r"(?:^|[\s;&|(])(?:\./|python3?\s+-m\s|python3?\s+[\w./-]+\.py|make\b|pip3?\s+install\s+(?:-e\s+)?['\"]?\.|"
    r"pip3?\s+install\s+-r\s|bash\s+[\w./-]+\.sh|sh\s+[\w./-]+\.sh|source\s+[\w./-]|pytest\b|tox\b|nox\b|uv\s+)",
    re.MULTILINE)


def _mark_dynamic(node: Any) -> Any:
    """Before the transform: keep a trace of expression keys whose value is not a mapping."""
    if isinstance(node, dict):
        out = type(node)()
        out.__dict__.update(getattr(node, "__dict__", {}))
        for k, v in node.items():
            if isinstance(k, str) and k.startswith("${{") and k.endswith("}}") and not isinstance(v, (dict, list)):
                out[k] = {DYNAMIC: {}}
            else:
                out[k] = _mark_dynamic(v)
        return out
    if isinstance(node, list):
        out_list = type(node)(_mark_dynamic(v) for v in node)
        out_list.__dict__.update(getattr(node, "__dict__", {}))
        return out_list
    return node


def check(ctx: Context) -> None:
    try:
        data = azure_main(_mark_dynamic(ctx.data))
    except AzurePipelinesDataError as exc:
        ctx.report("az-schema", (0, 0), str(exc))
        return
    _schema(ctx, data)
    walker = _Walker(ctx)
    walker.pipeline(data)


def _schema(ctx: Context, data: Any) -> None:
    for error in validator().iter_errors(data):
        for leaf in leaf_errors(error):
            inst = leaf.instance
            if isinstance(inst, dict) and DYNAMIC in inst:
                if leaf.validator in ("required", "minProperties", "anyOf", "oneOf"):
                    continue
                if leaf.validator == "additionalProperties":
                    extras = set(inst) - set(leaf.schema.get("properties", {}))
                    if extras <= {DYNAMIC}:
                        continue
            path, message = message_for(leaf)
            ctx.report("az-schema", locate(data, path), message)


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "y"))


class _Walker:
    """Walks stages -> jobs -> steps, applying the semantic rules."""

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    # ---- structure
    def pipeline(self, data: dict) -> None:
        if isinstance(data.get("stages"), list):
            self.stages(data["stages"])
        if isinstance(data.get("jobs"), list):
            self.jobs(data["jobs"], "jobs")
        if isinstance(data.get("phases"), list):
            self.jobs(data["phases"], "phases")
        if isinstance(data.get("steps"), list):
            self.steps(data["steps"], "steps")
        extends = data.get("extends")
        if isinstance(extends, dict):
            self.template_ref(extends)
            params = extends.get("parameters")
            if isinstance(params, dict):
                self.nested(params)
        self.variables(data.get("variables"))

    def nested(self, node: Any) -> None:
        """Stages/jobs/steps passed as template parameters (e.g. `extends: parameters: stages:`)."""
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "stages" and isinstance(value, list):
                    self.stages(value)
                elif key == "jobs" and isinstance(value, list):
                    self.jobs(value, "jobs")
                elif key == "steps" and isinstance(value, list):
                    self.steps(value, "steps")
                else:
                    self.nested(value)
        elif isinstance(node, list):
            for value in node:
                self.nested(value)

    def stages(self, stages: list) -> None:
        names = self.ids(stages, "stage", "stage")
        for stage in stages:
            if not isinstance(stage, dict):
                continue
            self.template_ref(stage)
            self.condition(stage)
            if "stage" in stage:
                self.depends_on(stage, names, "stage", stages)
            if isinstance(stage.get("jobs"), list):
                self.jobs(stage["jobs"], f"stage {stage.get('stage')}")
            self.variables(stage.get("variables"))

    def jobs(self, jobs: list, where: str) -> None:
        names = self.ids(jobs, ("job", "deployment", "phase"), "job")
        for job in jobs:
            if not isinstance(job, dict):
                continue
            self.template_ref(job)
            self.condition(job)
            self.continue_on_error(job, "job")
            if any(k in job for k in ("job", "deployment", "phase")):
                self.depends_on(job, names, "job", jobs)
            self.variables(job.get("variables"))
            if isinstance(job.get("steps"), list):
                self.steps(job["steps"], f"job {job.get('job')}")
            if "deployment" in job:
                self.deployment(job)

    def deployment(self, job: dict) -> None:
        name = job.get("deployment")
        key = key_of(job, "deployment")
        if "environment" not in job:
            self.ctx.report("az-deployment-environment", key,
                            f"deployment job {name!r} has no `environment`; a deployment job must name the "
                            "environment it deploys to (add `environment: <name>`), or make it a regular `job:`")
        strategy = job.get("strategy")
        if not isinstance(strategy, dict):
            return
        for kind, body in strategy.items():
            if not isinstance(body, dict):
                continue
            for hook_name, hook in body.items():
                steps = hook.get("steps") if isinstance(hook, dict) else None
                if not isinstance(steps, list):
                    continue
                self.steps(steps, f"deployment {name}")
                self.checkout_needed(name, f"{kind}.{hook_name}", steps)

    def checkout_needed(self, job_name: Any, hook: str, steps: list) -> None:
        if any(isinstance(s, dict) and "checkout" in s and str(s["checkout"]).lower() != "none" for s in steps):
            return
        for step in steps:
            if not isinstance(step, dict):
                continue
            text = next((step[k] for k in SCRIPT_KEYS if isinstance(step.get(k), str)), None)
            inputs = step.get("inputs") if isinstance(step.get("inputs"), dict) else {}
            path_input = next((k for k in inputs if str(k).lower() in ("scriptpath", "filepath")), None)
            if text is None:
                text = next((v for k, v in inputs.items() if str(k).lower() in _SCRIPT_INPUTS and isinstance(v, str)),
                            None)
            runs_repo = path_input is not None or (text is not None and _REPO_SCRIPT.search(text) is not None)
            if runs_repo:
                self.ctx.report(
                    "az-deployment-checkout", next(iter(step)),
                    f"deployment job {job_name!r} ({hook}) runs files from the repository, but deployment jobs "
                    "do not check out the repository by default; add `- checkout: self` before this step")
                return

    def steps(self, steps: list, where: str) -> None:
        self.ids(steps, "name", "step")
        for i, step in enumerate(steps):
            if not isinstance(step, dict):
                continue
            self.template_ref(step)
            self.condition(step)
            self.continue_on_error(step, "step")
            label = f"{where}, step {i + 1}"
            if "task" in step:
                check_task_step(self.ctx, step, label)
                inputs = step.get("inputs")
                if isinstance(inputs, dict):
                    for key, value in inputs.items():
                        if str(key).lower() in _SCRIPT_INPUTS[:3]:
                            check_ignored_failures(self.ctx, value, label)
            for key in SCRIPT_KEYS:
                check_ignored_failures(self.ctx, step.get(key), label)

    def variables(self, variables: Any) -> None:
        if isinstance(variables, list):
            for item in variables:
                if isinstance(item, dict):
                    self.template_ref(item)

    # ---- rules
    def ids(self, items: list, keys: str | tuple[str, ...], kind: str) -> dict[str, str]:
        """Reports bad and duplicate names; returns lower-case name -> name as written."""
        keys = (keys,) if isinstance(keys, str) else keys
        seen: dict[str, Key] = {}
        for item in items:
            if not isinstance(item, dict):
                continue
            for k in keys:
                value = item.get(k)
                if value is None or is_dynamic(value):
                    continue
                name = str(value)
                where = item[k] if hasattr(item[k], "line") else key_of(item, k)
                if kind == "step" and not _ID.match(name):
                    self.ctx.report("az-id-syntax", where,
                                    f"step name {name!r} is invalid: use only letters, digits and _, not starting "
                                    "with a digit (it is how later steps refer to this step's output variables)")
                elif kind != "step" and not _ID.match(name):
                    self.ctx.report("az-id-syntax", where,
                                    f"{kind} name {name!r} is invalid: use only letters, digits and _, not "
                                    "starting with a digit; put free text in displayName")
                if name.lower() in seen:
                    first = seen[name.lower()]
                    self.ctx.report("az-duplicate-id", where,
                                    f"{kind} name {name!r} is already used on line {first.line + 1}; "
                                    f"{kind} names must be unique")
                else:
                    seen[name.lower()] = where
        return {n: str(where) if isinstance(where, str) else n for n, where in seen.items()}

    def depends_on(self, item: dict, names: dict[str, str], kind: str, siblings: list) -> None:
        value = item.get("dependsOn")
        if value is None or any(isinstance(s, dict) and "template" in s for s in siblings):
            return  # names from templates are not known here
        own = str(item.get(kind) or item.get("deployment") or item.get("phase") or "")
        refs = value if isinstance(value, list) else [value]
        for ref in refs:
            if not isinstance(ref, str) or is_dynamic(ref) or not ref.strip():
                continue
            where = ref if hasattr(ref, "line") else key_of(item, "dependsOn")
            if ref.lower() == own.lower():
                self.ctx.report("az-depends-on", where, f"{kind} {own!r} depends on itself")
            elif ref.lower() not in names:
                known = ", ".join(sorted(names.values())) or "none"
                self.ctx.report("az-depends-on", where,
                                f"dependsOn names {ref!r}, but there is no {kind} with that name here "
                                f"(known {kind}s: {known})")

    def continue_on_error(self, item: dict, kind: str) -> None:
        if _truthy(item.get("continueOnError")):
            self.ctx.report("az-continue-on-error", key_of(item, "continueOnError"),
                            f"continueOnError: true lets this {kind} fail without failing the run; remove it "
                            "and handle the expected failure explicitly")

    def condition(self, item: dict) -> None:
        value = item.get("condition")
        if not isinstance(value, str) or value.strip().startswith("${{") and value.strip().endswith("}}"):
            return
        problem = check_condition(value)
        if problem is not None:
            pos = source_position(self.ctx, value, problem.offset, value[problem.offset:problem.offset + 12]) \
                if hasattr(value, "line") else locate(self.ctx.data, [])
            self.ctx.report("az-condition", pos, f"condition: {problem.message}")

    def template_ref(self, item: dict) -> None:
        value = item.get("template")
        if isinstance(value, str) and "$(" in value:
            self.ctx.report("az-template-macro", value if hasattr(value, "line") else key_of(item, "template"),
                            f"template path {str(value)!r} uses a $(...) macro, but templates are resolved at "
                            "compile time, before macros are expanded; use ${{ variables.name }} or "
                            "${{ parameters.name }} instead")
