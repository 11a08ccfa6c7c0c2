"""Azure Pipelines: the vendored schema, task inputs, and the semantic rules.

Template syntax is read the way Azure expands it, without knowing the parameters: `expand()`
unnests `${{ if }}`/`${{ elseif }}`/`${{ else }}`/`${{ each }}`/`${{ insert }}` keys (mapping
keys and list items), a computed key (`${{ x.name }}: ...`) or an insertion of a value only known
at compile time becomes DYNAMIC (keys unknown until expansion), and a value that is wholly a
template expression is left as is: the schema treats it as unknown (see azure_schema.py).
"""

from __future__ import annotations

import difflib
import fnmatch
import re
from typing import Any

from mlops_gen.azure_expressions import check_condition
from mlops_gen.validate.azure_schema import DYNAMIC, adapted_schema, is_dynamic, is_template, validator
from mlops_gen.validate.azure_tasks import check_task_step
from mlops_gen.validate.context import Context
from mlops_gen.validate.schemaerrors import dotted, leaf_errors, message_for
from mlops_gen.validate.shellrules import check_ignored_failures, source_position
from mlops_gen.validate.yamlpos import Key, key_of, locate

_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIRECTIVE = re.compile(r"^\$\{\{\s*(if|elseif|else|each|insert)\b", re.IGNORECASE)
_CONDITIONAL = ("if", "elseif", "else")
SCRIPT_KEYS = ("script", "bash", "pwsh", "powershell")
_SCRIPT_INPUTS = ("script", "inlinescript", "inline", "arguments")
_REPO_SCRIPT = re.compile(
    r"(?:^|[\s;&|(])(?:\./|python3?\s+-m\s|python3?\s+[\w./-]+\.py|make\b|pip3?\s+install\s+(?:-e\s+)?['\"]?\.|"
    r"pip3?\s+install\s+-r\s|bash\s+[\w./-]+\.sh|sh\s+[\w./-]+\.sh|source\s+[\w./-]|pytest\b|tox\b|nox\b|uv\s+)",
    re.MULTILINE)
# dependencies.X / dependencies['X'] / stageDependencies.S (names read by conditions and variables)
_DEPENDENCY_REF = re.compile(
    r"(?<![\w.])(stage)?dependencies\s*(?:\.\s*([A-Za-z_][\w-]*)|\[\s*'([^']*)'\s*\])", re.IGNORECASE)
# Top-level keys only a pipeline (not a template fragment) has.
_PIPELINE_KEYS = ("trigger", "pr", "pool", "resources", "extends", "schedules", "name", "lockBehavior",
                  "appendCommitMessageToRunName")


def _copy_meta(src: Any, dst: Any) -> Any:
    dst.__dict__.update(getattr(src, "__dict__", {}))
    return dst


def _directive(key: Any) -> str | None:
    m = _DIRECTIVE.match(key) if isinstance(key, str) else None
    return m.group(1).lower() if m else None


def expand(node: Any) -> Any:
    """The data with template directives unnested (positions kept; see the module doc)."""
    if isinstance(node, dict):
        out = _copy_meta(node, type(node)())
        for k, v in node.items():
            if not (isinstance(k, str) and "${{" in k):
                out[k] = expand(v)
            elif _directive(k) and isinstance(v, dict):
                out.update(expand(v))  # the keys a directive inserts into this mapping
            else:
                out[_copy_meta(k, Key(DYNAMIC))] = {}  # keys only known after expansion
        return out
    if isinstance(node, list):
        items: list[Any] = []
        for item in node:
            key = next(iter(item)) if isinstance(item, dict) and len(item) == 1 else None
            if not (isinstance(key, str) and key.strip().startswith("${{") and key.strip().endswith("}}")) \
                    or not _directive(key):
                items.append(expand(item))  # an ordinary item, or a mapping with a computed key
                continue
            value = expand(item[key])
            inserted = value if isinstance(value, list) else [value]
            if _directive(key) in _CONDITIONAL:
                for x in inserted:
                    if isinstance(x, dict):
                        x.__dict__["conditional"] = True
            items.extend(inserted)
        return items
    return node


def _is_fragment(data: Any) -> bool:
    """A template file (stages/jobs/steps with parameters, none of a pipeline's own keys): names it
    refers to may be defined by the file that includes it."""
    return (isinstance(data, dict) and "parameters" in data
            and any(k in data for k in ("stages", "jobs", "steps", "phases"))
            and not any(k in data for k in _PIPELINE_KEYS))


def check(ctx: Context) -> None:
    if not isinstance(ctx.data, dict):
        ctx.report("az-schema", (0, 0), "an Azure Pipelines file must be a mapping at the top level")
        return
    data = expand(ctx.data)
    _schema(ctx, data)
    walker = _Walker(ctx, fragment=_is_fragment(data))
    walker.pipeline(data)
    walker.triggers(data)


def _schema(ctx: Context, data: Any) -> None:
    for error in validator().iter_errors(data):
        for leaf in leaf_errors(error):
            inst = leaf.instance
            if leaf.validator == "additionalProperties" and isinstance(inst, dict):
                _unknown_keys(ctx, data, leaf)
                continue
            path, message = message_for(leaf)
            ctx.report("az-schema", locate(data, path), message)
    _empty_lists(ctx, data)


_LIST_KEYS = ("stages", "jobs", "steps", "phases", "include", "exclude")


def _empty_lists(ctx: Context, node: Any) -> None:
    """`steps:` / `include:` with nothing after it (often every item commented out): accepted by
    the schema (read as no items), worth a warning."""
    if isinstance(node, dict):
        for key, value in node.items():
            if value is None and key in _LIST_KEYS:
                ctx.report("az-empty-value", key if hasattr(key, "line") else (0, 0),
                           f"`{key}:` is empty (null); Azure reads it as no items, which is rarely what was meant "
                           "(were all items commented out?); remove the key or give it items")
            else:
                _empty_lists(ctx, value)
    elif isinstance(node, list):
        for value in node:
            _empty_lists(ctx, value)


def _unknown_keys(ctx: Context, data: Any, leaf: Any) -> None:
    """Azure rejects a misspelt key it knows of; a key it does not know at all is often accepted
    (several are undocumented), so that is a warning."""
    allowed = list(leaf.schema.get("properties", {}))
    other_forms = _sibling_form_keys(leaf)
    path = list(leaf.absolute_path)
    where = dotted(path)
    for key in leaf.instance:
        if key in allowed or key == DYNAMIC:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.75)
        pos = key if hasattr(key, "line") else locate(data, path)
        allowed_txt = ", ".join(allowed) if allowed else "none"
        if close:
            ctx.report("az-schema", pos, f"unknown key {key!r} in {where} (did you mean {close[0]!r}?); "
                                         f"allowed keys: {allowed_txt}")
        elif key in other_forms:
            ctx.report("az-schema", pos, f"key {key!r} cannot be combined with the other keys of {where} "
                                         f"(it belongs to another form of it); allowed keys here: {allowed_txt}")
        else:
            ctx.report("az-unknown-key", pos, f"unknown key {key!r} in {where}: not in Microsoft's schema here, "
                                              f"so Azure ignores it or uses it undocumented; allowed keys: {allowed_txt}")


def _names(value: Any) -> list[str] | None:
    """dependsOn as a list of names; None when it is not known here (an expression)."""
    refs = value if isinstance(value, list) else [] if value is None else [value]
    if not all(isinstance(r, str) and not is_dynamic(r) for r in refs):
        return None
    return [r.strip() for r in refs if r.strip()]


def _excluded(branch: str, exclude: list[str]) -> bool:
    """An include filter every branch of which is excluded (the same pattern, or a covering one)."""
    name = _short_branch(branch)
    for pattern in exclude:
        pat = _short_branch(pattern)
        if pat == name or pat == "*" or ("*" not in name and fnmatch.fnmatchcase(name, pat)):
            return True
    return False


def _short_branch(name: str) -> str:
    return name.strip().removeprefix("refs/heads/")


def _sibling_form_keys(leaf: Any) -> set[str]:
    """Keys of the other anyOf/oneOf forms of the same value (e.g. a pipeline with steps and jobs):
    a key from another form is a wrong combination, which Azure rejects, not an unknown key."""
    keys: set[str] = set()
    parent = leaf.parent
    while parent is not None and parent.instance is leaf.instance:
        if parent.validator in ("anyOf", "oneOf") and isinstance(parent.validator_value, list):
            for branch in parent.validator_value:
                keys.update(_resolve(branch).get("properties", {}))
        parent = parent.parent
    return keys


def _resolve(schema: Any) -> dict:
    for _ in range(10):
        ref = schema.get("$ref") if isinstance(schema, dict) else None
        if not (isinstance(ref, str) and ref.startswith("#/definitions/")):
            break
        schema = adapted_schema()["definitions"].get(ref.rsplit("/", 1)[-1], {})
    return schema if isinstance(schema, dict) else {}


def _truthy(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() in ("true", "yes", "on", "y"))


class _Walker:
    """Walks stages -> jobs -> steps, applying the semantic rules."""

    def __init__(self, ctx: Context, fragment: bool = False) -> None:
        self.ctx = ctx
        self.fragment = fragment  # names from outside the file (the including pipeline) may be referred to

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
                fragment, self.fragment = self.fragment, True  # the template adds stages/jobs of its own
                self.nested(params)
                self.fragment = fragment
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
        deps = self.stage_dependencies(stages)
        depended_on = {d.lower() for ds in deps if ds is not None for d in ds}
        known = None not in deps
        for index, stage in enumerate(stages):
            if not isinstance(stage, dict):
                continue
            self.template_ref(stage)
            self.condition(stage)
            if "stage" in stage:
                self.depends_on(stage, names, "stage", stages)
                self.undeclared_dependencies(stage, deps[index], "stage", stage.get("condition"),
                                             stage.get("variables"))
            if isinstance(stage.get("jobs"), list):
                name = stage.get("stage")
                waited_for = not known or not isinstance(name, str) or is_dynamic(name) or name.lower() in depended_on
                self.jobs(stage["jobs"], f"stage {name}", stage_deps=deps[index], stage_waited_for=waited_for)
            self.variables(stage.get("variables"))

    def stage_dependencies(self, stages: list) -> list[list[str] | None]:
        """Each stage's dependencies as written or implied (the previous stage when dependsOn is absent);
        None where they are not known here (expressions, templates, the first stage of a fragment)."""
        out: list[list[str] | None] = []
        for index, stage in enumerate(stages):
            if not isinstance(stage, dict) or "template" in stage or DYNAMIC in stage:
                out.append(None)
                continue
            if "dependsOn" in stage:
                out.append(_names(stage.get("dependsOn")))
                continue
            previous = stages[index - 1] if index else None
            if previous is None:
                out.append(None if self.fragment else [])
            elif isinstance(previous, dict) and isinstance(previous.get("stage"), str) \
                    and not is_dynamic(previous["stage"]) and not getattr(previous, "conditional", False):
                out.append([previous["stage"]])
            else:
                out.append(None)
        return out

    def jobs(self, jobs: list, where: str, stage_deps: list[str] | None = None,
             stage_waited_for: bool = False) -> None:
        names = self.ids(jobs, ("job", "deployment", "phase"), "job")
        for job in jobs:
            if not isinstance(job, dict):
                continue
            self.template_ref(job)
            self.condition(job)
            self.continue_on_error(job, "job")
            if any(k in job for k in ("job", "deployment", "phase")):
                self.depends_on(job, names, "job", jobs)
                deps = None if DYNAMIC in job else _names(job.get("dependsOn")) if "dependsOn" in job else []
                self.undeclared_dependencies(job, deps, "job", job.get("condition"), job.get("variables"),
                                             stage_deps)
                self.approval_unused(job, jobs, stage_waited_for)
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
            if is_template(step) or isinstance(step, dict) and "template" in step:
                return  # a steps template or inserted steps may check out (e.g. a sparse checkout)
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
        maybe_exclusive: set[str] = set()
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
                conditional = getattr(item, "conditional", False)  # from ${{ if }}/${{ else }}: maybe exclusive
                if name.lower() in seen:
                    if conditional or name.lower() in maybe_exclusive:
                        continue
                    first = seen[name.lower()]
                    self.ctx.report("az-duplicate-id", where,
                                    f"{kind} name {name!r} is already used on line {first.line + 1}; "
                                    f"{kind} names must be unique")
                else:
                    seen[name.lower()] = where
                    if conditional:
                        maybe_exclusive.add(name.lower())
        return {n: str(where) if isinstance(where, str) else n for n, where in seen.items()}

    def depends_on(self, item: dict, names: dict[str, str], kind: str, siblings: list) -> None:
        value = item.get("dependsOn")
        if value is None or any(isinstance(s, dict) and "template" in s or is_template(s) for s in siblings):
            return  # names from templates are not known here
        own = str(item.get(kind) or item.get("deployment") or item.get("phase") or "")
        refs = value if isinstance(value, list) else [value]
        for ref in refs:
            if not isinstance(ref, str) or is_dynamic(ref) or not ref.strip():
                continue
            where = ref if hasattr(ref, "line") else key_of(item, "dependsOn")
            if ref.lower() == own.lower():
                self.ctx.report("az-depends-on", where, f"{kind} {own!r} depends on itself")
            elif ref.lower() not in names and not self.fragment:
                known = ", ".join(sorted(names.values())) or "none"
                self.ctx.report("az-depends-on", where,
                                f"dependsOn names {ref!r}, but there is no {kind} with that name here "
                                f"(known {kind}s: {known})")

    def undeclared_dependencies(self, item: dict, deps: list[str] | None, kind: str, condition: Any,
                                variables: Any, stage_deps: list[str] | None = None) -> None:
        """`dependencies.X` (and, in a job, `stageDependencies.S`) read where X (S) is not among the
        dependencies: Azure evaluates the reference to null, so the condition or variable silently
        goes the wrong way."""
        texts = [condition] if isinstance(condition, str) else []
        if isinstance(variables, dict):
            texts.extend(v for v in variables.values() if isinstance(v, str))
        elif isinstance(variables, list):
            texts.extend(v["value"] for v in variables if isinstance(v, dict) and isinstance(v.get("value"), str))
        own = item.get(kind) if kind == "stage" else item.get("job") or item.get("deployment") or item.get("phase")
        for text in texts:
            for m in _DEPENDENCY_REF.finditer(text):
                name = m.group(2) or m.group(3) or ""
                stage_level = bool(m.group(1))
                known = stage_deps if stage_level else deps
                if stage_level and kind == "stage":
                    continue  # stageDependencies is a job-level context
                if known is None or not name or "${{" in name or "$(" in name:
                    continue
                if name.lower() in {d.lower() for d in known}:
                    continue
                if isinstance(own, str) and name.lower() == str(own).lower():
                    continue
                where = source_position(self.ctx, text, m.start(), m.group(0)) if hasattr(text, "line") \
                    else key_of(item, "condition") or locate(self.ctx.data, [])
                scope = "its stage's dependencies" if stage_level else f"this {kind}'s dependsOn"
                implied = " (a stage without dependsOn depends only on the stage before it)" \
                    if kind == "stage" and "dependsOn" not in item else ""
                if kind == "job" and not stage_level and "dependsOn" not in item:
                    implied = " (jobs do not depend on each other unless dependsOn says so)"
                self.ctx.report("az-undeclared-dependency", where,
                                f"{m.group(0)!s} is read, but {name!r} is not in {scope}{implied}; Azure then "
                                f"reads null there, so the expression silently misbehaves; add {name!r} to "
                                "dependsOn")

    def approval_unused(self, job: dict, jobs: list, stage_waited_for: bool) -> None:
        """An agentless ManualValidation job nothing waits for: the other jobs run before anyone approves."""
        name = job.get("job")
        if self.fragment or stage_waited_for or not isinstance(name, str) or is_dynamic(name):
            return
        if not (isinstance(job.get("pool"), str) and job["pool"].strip().lower() == "server"):
            return
        steps = job.get("steps") if isinstance(job.get("steps"), list) else []
        task = next((s for s in steps if isinstance(s, dict) and isinstance(s.get("task"), str)
                     and s["task"].split("@")[0].strip().lower() == "manualvalidation"), None)
        if task is None:
            return
        for other in jobs:
            if not isinstance(other, dict) or other is job:
                continue
            if "template" in other or is_template(other) or "dependsOn" in other and _names(other["dependsOn"]) is None:
                return  # who depends on what is not known here
            if name.lower() in {d.lower() for d in _names(other.get("dependsOn")) or []}:
                return
        self.ctx.report("az-approval-unused", key_of(task, "task") or key_of(job, "job"),
                        f"job {name!r} waits for a manual validation, but no job depends on it (nor any later "
                        f"stage on its stage), so nothing waits for the approval; add `dependsOn: {name}` to the "
                        "jobs it should gate")

    def triggers(self, data: dict) -> None:
        for kind in ("trigger", "pr"):
            value = data.get(kind)
            if isinstance(value, list):
                include, exclude = value, []
            elif isinstance(value, dict) and isinstance(value.get("branches"), dict):
                include = value["branches"].get("include") or []
                exclude = value["branches"].get("exclude") or []
            else:
                continue
            if not isinstance(include, list) or not isinstance(exclude, list):
                continue
            include = [b for b in include if isinstance(b, str)]
            exclude = [b for b in exclude if isinstance(b, str)]
            if any(is_dynamic(b) for b in include + exclude):
                continue
            if kind == "pr":
                for branch in include:
                    if branch.strip().lower().startswith("refs/tags/"):
                        self.ctx.report("az-branch-never-matches", branch if hasattr(branch, "line") else key_of(data, kind),
                                        f"pr branch filter {str(branch)!r} names a tag, but pull requests target "
                                        "branches, so it never matches; use trigger: tags: for tags")
            if include and exclude and all(_excluded(b, exclude) for b in include):
                self.ctx.report("az-branch-never-matches", key_of(data, kind),
                                f"{kind}: every included branch ({', '.join(map(str, include))}) is also excluded, "
                                f"so the {kind} never runs; remove the exclude or say `{kind}: none`")

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
