"""AWS CodeBuild buildspec: our JSON Schema for version 0.2, then the semantic rules."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from jsonschema import Draft7Validator

from mlops_gen.validate.context import Context
from mlops_gen.validate.schemaerrors import dotted, report_schema_errors
from mlops_gen.validate.schemas import own_schema
from mlops_gen.validate.shellrules import check_ignored_failures
from mlops_gen.validate.yamlpos import Str, key_of

PHASES = ("install", "pre_build", "build", "post_build")
# Keys whose values are meant to be yes/no: a YAML 1.1 boolean there is intended.
_YES_NO_KEYS = {"discard-paths", "enable-symlinks", "git-credential-helper", "upload-artifacts", "logs",
                "fast-fail", "ignore-failure", "privileged-mode", "debug-session"}
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}


@lru_cache(maxsize=1)
def validator() -> Draft7Validator:
    return Draft7Validator(own_schema("buildspec-0.2.schema.json"))


def check(ctx: Context) -> None:
    data = ctx.data
    report_schema_errors(ctx, "bs-schema", validator().iter_errors(data))
    _check_commands(ctx, data)
    _check_variables(ctx, data)
    _check_shell(ctx, data)
    _check_yaml11_booleans(ctx, data, [])


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _check_commands(ctx: Context, data: dict) -> None:
    for phase_name, phase in _mapping(data.get("phases")).items():
        for block in ("commands", "finally"):
            items = _mapping(phase).get(block)
            if not isinstance(items, list):
                continue
            for i, item in enumerate(items):
                where = f"phases.{phase_name}.{block}[{i}]"
                path = ["phases", phase_name, block, i]
                if isinstance(item, dict):
                    key = next(iter(item), "")
                    ctx.report("bs-command-mapping", path,
                               f"{where} is a mapping, not a command: YAML read `{key}: ...` as a key and "
                               "value because of the colon followed by a space; quote the whole command")
                elif item is None:
                    ctx.report("bs-command-empty", path,
                               f"{where} is empty (a `-` with nothing after it); remove it or write the command")
                elif isinstance(item, str):
                    check_ignored_failures(ctx, item, where)


def _check_variables(ctx: Context, data: dict) -> None:
    env = _mapping(data.get("env"))
    sources = [(["env", section], _mapping(env.get(section)))
               for section in ("variables", "parameter-store", "secrets-manager")]
    batch = _mapping(data.get("batch"))
    for kind in ("build-list", "build-graph"):
        tasks = batch.get(kind)
        for i, task in enumerate(tasks if isinstance(tasks, list) else []):
            task_vars = _mapping(_mapping(_mapping(task).get("env")).get("variables"))
            sources.append((["batch", kind, i, "env", "variables"], task_vars))
    for path, mapping in sources:
        for name in mapping:
            if str(name).upper().startswith("CODEBUILD_"):
                ctx.report("bs-reserved-variable", name,
                           f"{dotted(path)}.{name}: names starting with CODEBUILD_ are reserved for CodeBuild; "
                           "rename the variable")
    exported = env.get("exported-variables")
    for i, name in enumerate(exported if isinstance(exported, list) else []):
        if isinstance(name, str) and name.upper().startswith("AWS_"):
            ctx.report("bs-exported-aws", ["env", "exported-variables", i],
                       f"env.exported-variables: {name} cannot be exported, CodeBuild does not export "
                       "variables whose names start with AWS_; copy it to another name and export that")


def _check_shell(ctx: Context, data: dict) -> None:
    if not isinstance(data.get("phases"), dict):
        return
    env = data.get("env")
    if isinstance(env, dict) and "shell" in env:
        return
    where = key_of(data, "env") if isinstance(env, dict) else key_of(data, "phases")
    ctx.report("bs-default-shell", where,
               "no env.shell: on Linux CodeBuild runs every command with /bin/sh, so bash features "
               "(set -o pipefail, [[ ]], source, arrays) fail or behave differently; add `shell: bash` under env")


def _check_yaml11_booleans(ctx: Context, node: Any, path: list) -> None:
    if isinstance(node, dict):
        for k, v in node.items():
            if k not in _YES_NO_KEYS:
                _check_yaml11_booleans(ctx, v, path + [k])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _check_yaml11_booleans(ctx, v, path + [i])
    elif isinstance(node, Str) and node.plain and node.lower() in _YAML11_BOOLS:
        ctx.report("bs-yaml11-bool", node,
                   f"{dotted(path)} is the unquoted {node!r}, which CodeBuild's YAML 1.1 parser reads as the "
                   f"boolean {str(node.lower() in ('yes', 'on', 'y')).lower()}; write '{node}' in quotes if "
                   "you meant the string")
