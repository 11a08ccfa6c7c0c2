"""AWS CodeBuild buildspec: our JSON Schema for version 0.2, then the semantic rules."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from mlops_gen.validate.context import Context
from mlops_gen.validate.proofs import schema_errors
from mlops_gen.validate.schemaerrors import dotted, report_schema_errors
from mlops_gen.validate.schemas import own_schema
from mlops_gen.validate.shellrules import (
    bash_feature,
    check_ignored_failures,
    looks_like_windows,
    source_position,
)
from mlops_gen.validate.yamlpos import Str

PHASES = ("install", "pre_build", "build", "post_build")
# Keys whose values are meant to be yes/no: a YAML 1.1 boolean there is intended.
_YES_NO_KEYS = {"discard-paths", "enable-symlinks", "git-credential-helper", "upload-artifacts", "logs",
                "fast-fail", "ignore-failure", "privileged-mode", "debug-session"}
_YAML11_BOOLS = {"yes", "no", "on", "off", "y", "n"}


SCHEMA = "buildspec-0.2.schema.json"


@lru_cache(maxsize=1)
def validator() -> Any:
    """jsonschema's validator of the schema: what reports the schema errors (see proofs/)."""
    from jsonschema import Draft7Validator

    return Draft7Validator(own_schema(SCHEMA))


def check(ctx: Context) -> None:
    data = ctx.data
    report_schema_errors(ctx, "bs-schema", schema_errors("buildspec", validator, data), unknown_key=_unknown_key,
                         empty_list="bs-empty-list")
    _check_commands(ctx, data)
    _check_variables(ctx, data)
    _check_shell(ctx, data)
    _check_yaml11_booleans(ctx, data, [])


def _unknown_key(path: list, key: str, close: str | None) -> tuple[str, str] | None:
    """CodeBuild ignores keys it does not know (e.g. the common `artifacts: type: zip`); a near miss of
    a documented key is a typo that silently loses the setting, and stays a bs-schema error."""
    if close is not None:
        return None
    return "bs-unknown-key", ": CodeBuild ignores keys it does not know, so it has no effect"


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


_WINDOWS_SHELLS = {"powershell.exe", "cmd.exe", "pwsh", "pwsh.exe", "powershell"}


def _commands(data: dict):
    """(where, command) for every string command in the phases."""
    for phase_name, phase in _mapping(data.get("phases")).items():
        for block in ("commands", "finally"):
            items = _mapping(phase).get(block)
            for i, item in enumerate(items if isinstance(items, list) else []):
                if isinstance(item, str):
                    yield f"phases.{phase_name}.{block}[{i}]", item


def _check_shell(ctx: Context, data: dict) -> None:
    """A bash-only feature in a command that /bin/sh runs (no env.shell, or shell: /bin/sh)."""
    shell = _mapping(data.get("env")).get("shell")
    if shell is not None and str(shell).strip() != "/bin/sh":
        return  # bash, or a Windows shell
    commands = list(_commands(data))
    if any(looks_like_windows(cmd) for _, cmd in commands):
        return  # a Windows buildspec: PowerShell runs the commands, not sh
    hits = [(where, cmd, found) for where, cmd in commands if (found := bash_feature(cmd))]
    if not hits:
        return
    where, cmd, (feature, offset, text) = hits[0]
    more = f" ({len(hits) - 1} more command(s) use bash features too)" if len(hits) > 1 else ""
    how = "with env.shell: /bin/sh" if shell is not None else "without env.shell"
    ctx.report("bs-default-shell", source_position(ctx, cmd, offset, text),
               f"{where} uses {feature} (`{text}`), a bash feature, but {how} CodeBuild runs Linux commands "
               f"with /bin/sh, which is dash on the Ubuntu standard images, where it fails or behaves "
               f"differently{more}; add `shell: bash` under env")


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
