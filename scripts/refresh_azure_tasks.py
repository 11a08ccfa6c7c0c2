#!/usr/bin/env python3
"""Regenerate generator/mlops_gen/validate/data/azure-tasks.json, the built-in Azure Pipelines task catalogue.

The catalogue is read from Microsoft's own task definitions, `Tasks/*/task.json` in
https://github.com/microsoft/azure-pipelines-tasks (one folder per task and major version, e.g.
Tasks/HelmDeployV0; task.loc.json is the localisable copy and is not read). For each task it keeps
what `mlops-gen validate` checks: the canonical name, the major version, the `deprecated` flag and,
per input, name, aliases, type, required, default value, the option keys of a closed pickList/radio
and the visibleRule (the input's own rule and-ed with its group's rule). Labels and help text are
left out.

Tasks that the previous catalogue (the task branches of the Azure Pipelines schema vendored by
check-jsonschema) knew but the repository no longer has -- mostly older major versions -- are
kept, marked "source": "schema", so nothing that passed before is rejected now.

Usage, from a checkout (the commit and its date are read with git if the folder is in a work tree):

    python scripts/refresh_azure_tasks.py ~/src/azure-pipelines-tasks/Tasks

or from a bare git directory (or any git directory) and a commit:

    python scripts/refresh_azure_tasks.py --git-dir /path/to/azure-pipelines-tasks.git --commit HEAD
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SOURCE = "https://github.com/microsoft/azure-pipelines-tasks"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "generator" / "mlops_gen" / "validate" / "data" / "azure-tasks.json"
# Tasks/X/task.json, then the variants the build generates from build configs (Node24, Wif, ...),
# whose task.json may add inputs: _generated/X_Config/task.json.
_TASK_JSON = re.compile(r"^(?:Tasks|_generated)/[^/]+/task\.json$")


def _git(git_dir: str, *args: str) -> str:
    return subprocess.run(["git", f"--git-dir={git_dir}", *args], check=True, capture_output=True,
                          text=True, encoding="utf-8").stdout


def _load(text: str) -> dict[str, Any]:
    return json.loads(text.lstrip("\ufeff"))


def definitions_from_git(git_dir: str, commit: str) -> Iterator[tuple[str, dict[str, Any]]]:
    listing = _git(git_dir, "ls-tree", "-r", "--name-only", commit, "Tasks/", "_generated/").splitlines()
    paths = [p for p in listing if _TASK_JSON.match(p)]
    for path in sorted(paths, key=lambda p: (not p.startswith("Tasks/"), p)):
        yield path, _load(_git(git_dir, "show", f"{commit}:{path}"))


def definitions_from_folder(tasks: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    generated = tasks.parent / "_generated"
    for path in [*sorted(tasks.glob("*/task.json")), *sorted(generated.glob("*/task.json"))]:
        yield str(path), _load(path.read_text(encoding="utf-8-sig"))


def _flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _string(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def convert_task(definition: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    name = definition["name"]
    major = int(definition["version"]["Major"])
    groups = {g.get("name"): g.get("visibleRule") for g in definition.get("groups", []) if isinstance(g, dict)}
    inputs = []
    for raw in definition.get("inputs", []):
        item: dict[str, Any] = {"name": raw["name"]}
        if raw.get("aliases"):
            item["aliases"] = list(raw["aliases"])
        kind = str(raw.get("type", "string")).lower()
        item["type"] = kind
        if _flag(raw.get("required")):
            item["required"] = True
        default = _string(raw.get("defaultValue"))
        if default:
            item["default"] = default
        editable = _flag((raw.get("properties") or {}).get("EditableOptions"))
        if kind in ("picklist", "radio") and isinstance(raw.get("options"), dict) and raw["options"] and not editable:
            item["options"] = list(raw["options"])
        rules = [r.strip() for r in (groups.get(raw.get("groupName") or raw.get("groupname")), raw.get("visibleRule"))
                 if isinstance(r, str) and r.strip()]
        if len(rules) == 1:
            item["visibleRule"] = rules[0]
        elif rules:
            item["visibleRule"] = " && ".join(f"({r})" for r in rules)
        inputs.append(item)
    task: dict[str, Any] = {"name": name, "major": major}
    if _flag(definition.get("deprecated")):
        task["deprecated"] = True
    task["inputs"] = inputs
    return f"{name}@{major}".lower(), task


def merge_inputs(task: dict[str, Any], inputs: list[dict[str, Any]], source: str | None = None) -> None:
    """Add to `task` the inputs another definition of it knows (a build-config variant, the schema).

    The union is taken, since either definition may be the one deployed: an input known only
    elsewhere is added as optional; one that a variant makes optional is not required (the
    schema's `required` lists leave out inputs with aliases, so they do not count).
    """
    index = {n.lower(): item for item in task["inputs"] for n in (item["name"], *item.get("aliases", []))}
    for other in inputs:
        names = [other["name"], *other.get("aliases", [])]
        mine = next((index[n.lower()] for n in names if n.lower() in index), None)
        if mine is None:
            added = {k: v for k, v in other.items() if k != "required"}
            if source:
                added["source"] = source
            task["inputs"].append(added)
            index.update({n.lower(): added for n in names})
            continue
        if mine.get("required") and not other.get("required") and source is None:
            del mine["required"]
        for alias in other.get("aliases", []):
            if alias.lower() not in index and alias.lower() != mine["name"].lower():
                mine.setdefault("aliases", []).append(alias)
                index[alias.lower()] = mine


def schema_tasks() -> dict[str, dict[str, Any]]:
    """The task branches of check-jsonschema's vendored Azure Pipelines schema, in the same shape."""
    from check_jsonschema.builtin_schemas import get_builtin_schema

    out: dict[str, dict[str, Any]] = {}
    for branch in get_builtin_schema("vendor.azure-pipelines")["definitions"]["task"]["anyOf"]:
        ref = branch.get("properties", {}).get("task", {}).get("pattern", "").strip("^$")
        if "@" not in ref or ref.lower() in out:
            continue
        name, major = ref.rsplit("@", 1)
        spec = branch.get("properties", {}).get("inputs", {})
        required = set(spec.get("required", []))
        inputs = []
        for input_name, prop in spec.get("properties", {}).items():
            item: dict[str, Any] = {"name": input_name}
            if prop.get("aliases"):
                item["aliases"] = list(prop["aliases"])
            item["type"] = "boolean" if prop.get("type") == "boolean" else "picklist" if "enum" in prop else "string"
            if input_name in required:
                item["required"] = True
            if "enum" in prop:
                item["options"] = [_string(e) for e in prop["enum"]]
            inputs.append(item)
        task: dict[str, Any] = {"name": name, "major": int(major)}
        if "deprecated" in branch.get("description", "").lower() or branch.get("deprecationMessage"):
            task["deprecated"] = True
        task["source"] = "schema"
        task["inputs"] = inputs
        out[ref.lower()] = task
    return out


def build(definitions: Iterator[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    tasks: dict[str, dict[str, Any]] = {}
    for path, definition in definitions:
        key, task = convert_task(definition)
        if key not in tasks:
            tasks[key] = task
        elif "/_generated/" in f"/{path}":
            merge_inputs(tasks[key], task["inputs"])
        else:
            print(f"warning: {path} repeats {task['name']}@{task['major']}; keeping the first", file=sys.stderr)
    for key, task in schema_tasks().items():
        if key in tasks:
            merge_inputs(tasks[key], task["inputs"], source="schema")
        else:
            tasks[key] = task
    return dict(sorted(tasks.items()))


def render(header: dict[str, Any], tasks: dict[str, dict[str, Any]]) -> str:
    """Compact JSON, one task per line (so a refresh diffs task by task)."""
    compact = {"separators": (",", ":"), "ensure_ascii": False}
    lines = ["{"]
    lines += [f"{json.dumps(k)}:{json.dumps(v, **compact)}," for k, v in header.items()]
    lines.append('"tasks":{')
    body = [f"{json.dumps(k)}:{json.dumps(v, **compact)}" for k, v in tasks.items()]
    lines.append(",\n".join(body))
    lines.append("}}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tasks", nargs="?", type=Path, help="a Tasks folder of a checkout (or of an extracted archive)")
    parser.add_argument("--git-dir", help="read Tasks/*/task.json from this git directory instead (bare is fine)")
    parser.add_argument("--commit", help="the commit to read (--git-dir) or to record (folder); default HEAD")
    parser.add_argument("--date", help="the commit date to record when it cannot be read with git")
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    if (args.tasks is None) == (args.git_dir is None):
        parser.error("give either a Tasks folder or --git-dir")

    git_dir = args.git_dir
    if git_dir is None:
        try:
            git_dir = _git(str(args.tasks / ".." / ".git"), "rev-parse", "--absolute-git-dir").strip() \
                if (args.tasks / ".." / ".git").exists() else None
        except subprocess.CalledProcessError:
            git_dir = None
    commit, date = args.commit, args.date
    if git_dir is not None:
        commit, date = _git(git_dir, "log", "-1", "--format=%H %cI", args.commit or "HEAD").split()
    if commit is None:
        parser.error("cannot tell the commit of that folder; give --commit (and --date)")

    definitions = definitions_from_git(git_dir, commit) if args.git_dir else definitions_from_folder(args.tasks)
    tasks = build(definitions)
    header = {"source": SOURCE, "commit": commit, "date": date, "generated_by": "scripts/refresh_azure_tasks.py"}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(header, tasks), encoding="utf-8")
    from_schema = sum(1 for t in tasks.values() if t.get("source") == "schema")
    print(f"{args.output}: {len(tasks)} tasks ({from_schema} kept from the vendored schema) at {commit} ({date})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
