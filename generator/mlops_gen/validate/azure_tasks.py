"""Task steps (`- task: Name@N`) checked against their own branch of the vendored schema."""

from __future__ import annotations

import difflib
from typing import Any

from mlops_gen.validate.azure_schema import AzureValidator, is_dynamic, task_branches
from mlops_gen.validate.context import Context
from mlops_gen.validate.schemaerrors import describe_type
from mlops_gen.validate.yamlpos import Key, key_of


def check_task_step(ctx: Context, step: dict, where: str) -> None:
    ref = step.get("task")
    key = key_of(step, "task")
    if not isinstance(ref, str) or is_dynamic(ref):
        return
    name = ref.strip()
    if ctx.options.task_allowed(name):
        return
    if "@" not in name:
        ctx.report("az-unknown-task", key,
                   f"task {name!r} has no major version; write it as Name@Major, e.g. {name}@1")
        return
    branch = task_branches().get(name.lower())
    if branch is None:
        base = name.split("@")[0]
        if "." in base:
            ctx.report("az-extension-task", key,
                       f"{name} is a Marketplace/extension task, which cannot be checked offline; "
                       f"allow it with --allow-task '{name}' or allow-tasks in [tool.mlops-gen.validate]")
            return
        known = [b["properties"]["task"]["pattern"].strip("^$") for b in task_branches().values()]
        versions = [k for k in known if k.lower().split("@")[0] == base.lower()]
        if versions:
            hint = f"; available versions: {', '.join(sorted(versions))}"
        else:
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.7)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
        ctx.report("az-unknown-task", key,
                   f"{name} is not a built-in Azure Pipelines task{hint} (for a custom task, allow it with "
                   "--allow-task or allow-tasks in [tool.mlops-gen.validate])")
        return
    _check_inputs(ctx, step, branch, name, where)


def _input_names(spec: dict) -> dict[str, str]:
    """lower-case name or alias -> canonical input name."""
    out: dict[str, str] = {}
    for canonical, prop in spec.get("properties", {}).items():
        out.setdefault(canonical.lower(), canonical)
        for alias in prop.get("aliases", []):
            out.setdefault(alias.lower(), canonical)
    return out


def _check_inputs(ctx: Context, step: dict, branch: dict, name: str, where: str) -> None:
    spec = branch.get("properties", {}).get("inputs", {})
    props = spec.get("properties", {})
    names = _input_names(spec)
    inputs = step.get("inputs")
    inputs_key = key_of(step, "inputs") or key_of(step, "task")
    if inputs is None:
        inputs = {}
    if not isinstance(inputs, dict):
        ctx.report("az-task-input", inputs_key, f"{where}.inputs must be a mapping, not {describe_type(inputs)}")
        return
    given: set[str] = set()
    for key, value in inputs.items():
        if isinstance(key, str) and key.startswith("${{"):
            continue  # inputs inserted by a template expression
        canonical = names.get(str(key).lower())
        if canonical is None:
            close = difflib.get_close_matches(str(key), list(props), n=1, cutoff=0.6)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            ctx.report("az-task-unknown-input", key,
                       f"{name} has no input {str(key)!r}{hint}, so Azure ignores it; its inputs are: "
                       f"{', '.join(props) or 'none'}")
            continue
        given.add(canonical)
        _check_value(ctx, key, value, props[canonical], name, canonical)
    if any(isinstance(k, str) and k.startswith("${{") for k in inputs):
        return
    for required in spec.get("required", []):
        if required not in given:
            ctx.report("az-task-required-input", inputs_key,
                       f"{name} needs the input {required!r}" + (f" (or {', '.join(props[required]['aliases'])})"
                                                                 if props.get(required, {}).get("aliases") else ""))


def _check_value(ctx: Context, key: Key, value: Any, schema: dict, task: str, input_name: str) -> None:
    for error in AzureValidator(schema).iter_errors(value):
        if error.validator == "enum":
            allowed = ", ".join(map(str, schema.get("enum", [])))
            message = f"{task} input {input_name!r} is {value!r}; allowed values: {allowed}"
        elif error.validator == "type":
            message = f"{task} input {input_name!r} must be {schema.get('type')}, not {describe_type(value)}"
        else:
            message = f"{task} input {input_name!r}: {error.message}"
        ctx.report("az-task-input", key, message)
        return
