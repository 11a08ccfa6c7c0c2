"""Google Cloud Build: a strict parse into the `Build` protobuf, the vendored schema, and the
substitution, waitFor and secret rules."""

from __future__ import annotations

import copy
import difflib
import re
from functools import cache, lru_cache
from typing import Any

from mlops_gen.validate.context import Context
from mlops_gen.validate.precomputed import CLOUDBUILD_DESCRIPTOR, read_data
from mlops_gen.validate.proofs import schema_errors
from mlops_gen.validate.schemaerrors import describe_type, report_schema_errors
from mlops_gen.validate.schemas import vendored_schema
from mlops_gen.validate.shellrules import check_ignored_failures, source_position
from mlops_gen.validate.yamlpos import Key, Str, key_of, locate, to_plain

BUILTINS = {
    "PROJECT_ID", "PROJECT_NUMBER", "LOCATION", "BUILD_ID", "REPO_NAME", "REPO_FULL_NAME", "BRANCH_NAME",
    "TAG_NAME", "REF_NAME", "REVISION_ID", "COMMIT_SHA", "SHORT_SHA", "TRIGGER_NAME",
    "TRIGGER_BUILD_CONFIG_PATH", "SERVICE_ACCOUNT_EMAIL", "SERVICE_ACCOUNT",
    # supplied by pull-request triggers
    "_HEAD_BRANCH", "_BASE_BRANCH", "_HEAD_REPO_URL", "_PR_NUMBER",
}
_USER_NAME = re.compile(r"^_[A-Z0-9_]+$")
# Cloud Build's template parameters (cloud-build-local subst.go): `$$` (an escaped $), `${KEY}` and `$KEY`
# with KEY matching [A-Z_][A-Z0-9_]* (the longest such prefix: `$HOMEdir` is KEY HOME). Lower-case names
# (`$f`, `${cache_file}`) are not parameters and reach the shell untouched. `${KEY:-x}` and other bash forms
# are expanded only with dynamicSubstitutions (always on for triggered builds): a use of KEY, never a
# reason to reject. Group 1: braced KEY, group 2: the rest of the braces, group 3: unbraced KEY.
_REF = re.compile(r"\$\$|\$\{([A-Z_][A-Z0-9_]*)(\}|[^a-z0-9_}][^}]*\})|\$([A-Z_][A-Z0-9_]*)")
# In a `script`, Cloud Build substitutes nothing: substitutions reach it only as environment variables
# (automapSubstitutions, or env: [_X=$_X]). `$$` is the shell's PID there.
_SCRIPT_VAR = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")
# Fields Cloud Build sets itself: in a config file they are a mistake.
_OUTPUT_ONLY = {"id", "projectId", "status", "statusDetail", "results", "createTime", "startTime", "finishTime",
                "sourceProvenance", "buildTriggerId", "logUrl", "timing", "approval", "warnings", "failureInfo",
                "name"}
_STEP_OUTPUT_ONLY = {"timing", "pullTiming", "status", "exitCode"}
_SHELL_FIELDS = {"args", "entrypoint", "env", "dir"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def camel_keys(node: Any, maps: bool = False) -> Any:
    """Proto field names (snake_case) -> JSON names, which the schema knows. Map keys are kept."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            name = k
            if not maps and isinstance(k, str) and "_" in k.strip("_") and not k.startswith("_") and k.islower():
                name = Key(camel(k))
                if isinstance(k, Key):
                    name.line, name.col, name.value_pos = k.line, k.col, k.value_pos
            out[name] = camel_keys(v, maps=camel(str(k)) in ("substitutions", "secretEnv", "envMap"))
        return out
    if isinstance(node, list):
        return [camel_keys(v) for v in node]
    return node


def corrected_schema() -> dict[str, Any]:
    """The vendored schema, corrected where it disagrees with the Build message (GoModules spells
    repositoryProjectId as repositoryProject_id)."""
    schema = copy.deepcopy(vendored_schema("cloudbuild"))
    go = schema.get("definitions", {}).get("GoModules", {})
    props = go.get("properties", {})
    if "repositoryProject_id" in props:
        props["repositoryProjectId"] = props.pop("repositoryProject_id")
        go["required"] = ["repositoryProjectId" if r == "repositoryProject_id" else r for r in go.get("required", [])]
    return schema


@lru_cache(maxsize=1)
def schema_validator() -> Any:
    """jsonschema's validator of corrected_schema(): what reports the schema errors (see proofs/)."""
    from jsonschema import Draft7Validator

    return Draft7Validator(corrected_schema())


@cache
def message_class(name: str) -> type:
    """google.devtools.cloudbuild.v1's `name` message (Build, BuildTrigger) as a plain protobuf class.

    Built from the file descriptor that google-cloud-build's proto-plus module generates, shipped in data/
    (see precomputed.py): importing that module costs ~40 ms of class creation for 72 messages, of which
    a validator uses two."""
    from google.protobuf import message_factory

    return message_factory.GetMessageClass(_pool().FindMessageTypeByName(f"google.devtools.cloudbuild.v1.{name}"))


@lru_cache(maxsize=1)
def _pool() -> Any:
    """A pool of its own: a later import of the real module, which registers the same file in the
    default pool, must not clash with it."""
    from google.api import httpbody_pb2
    from google.protobuf import any_pb2, descriptor_pool, duration_pb2, field_mask_pb2, timestamp_pb2

    pool = descriptor_pool.DescriptorPool()
    for module in (any_pb2, duration_pb2, timestamp_pb2, field_mask_pb2, httpbody_pb2):  # what it imports
        pool.AddSerializedFile(module.DESCRIPTOR.serialized_pb)
    pool.AddSerializedFile(read_data(CLOUDBUILD_DESCRIPTOR))
    return pool


def proto_knows(path: list, key: str, message: str = "Build") -> bool:
    """Whether Cloud Build's API message at `path` (JSON names, list indexes skipped) has field `key`."""
    desc = message_class(message).DESCRIPTOR
    for part in path:
        if isinstance(part, int):
            continue
        field = desc.fields_by_camelcase_name.get(str(part)) or desc.fields_by_name.get(str(part))
        if field is None or field.message_type is None:
            return False
        if field.message_type.GetOptions().map_entry:
            return True  # any key is a map key
        desc = field.message_type
    return str(key) in desc.fields_by_camelcase_name or str(key) in desc.fields_by_name


def _unknown_key(path: list, key: str, close: str | None) -> tuple[str, str] | None:
    """gcloud rejects a field the Build message lacks (`.steps[0].x: unused`); one the message has but
    the schema does not list (deprecated or newer) is accepted."""
    if proto_knows(path, key):
        return "gcb-unknown-key", (": the config schema does not list it, but Cloud Build's API still has the "
                                   "field (deprecated or newer); check it is still meant")
    if close is not None:
        return None
    return "gcb-schema", (": Cloud Build's Build message has no such field, so gcloud rejects the config "
                          "(`unused`)")


def check(ctx: Context) -> None:
    data = camel_keys(ctx.data)
    parseable = _check_ciphertexts(ctx, _check_substitution_values(ctx, data))
    _check_structure(ctx, data)
    report_schema_errors(ctx, "gcb-schema", schema_errors("cloudbuild", schema_validator, parseable), data,
                         unknown_key=_unknown_key, empty_list="gcb-empty-list")
    explained = {f.line for f in ctx.findings}
    strict_parse(ctx, data, parseable, skip_lines=explained)
    _Rules(ctx, data).run()


def _check_substitution_values(ctx: Context, data: dict) -> dict:
    """Report substitution values that are not strings and `waitFor: id` strings; return data the
    schema and the protobuf parse can take."""
    steps = data.get("steps")
    if isinstance(steps, list):
        fixed = []
        for step in steps:
            wait = step.get("waitFor") if isinstance(step, dict) else None
            if isinstance(wait, str):
                ctx.report("gcb-wait-for-string", wait,
                           f"waitFor is the string {str(wait)!r}, not a list: `gcloud builds submit` reads it as "
                           f"[{str(wait)!r}], but a trigger reading the file may not (a string where a list is "
                           "expected fails there with 'cannot unmarshal string into Go value'); "
                           f"write waitFor: ['{wait}']")
                step = {**step, "waitFor": [wait]}
            fixed.append(step)
        data = {**data, "steps": fixed}
    subs = data.get("substitutions")
    if not isinstance(subs, dict):
        return data
    clean = {}
    for key, value in subs.items():
        if value is None:
            ctx.report("gcb-substitution-null", key,
                       f"substitution {key} has no value; every build must then pass it with --substitutions, "
                       "or give it a default here (\"\" for empty)")
            value = ""
        elif not isinstance(value, str):
            ctx.report("gcb-proto", key,
                       f"substitution {key} is {describe_type(value)}; substitution values must be strings "
                       "(quote the value; an unquoted [..] is a YAML list)")
            value = ""
        clean[key] = value
    return {**data, "substitutions": clean}


_BASE64 = re.compile(r"^[A-Za-z0-9+/_-]*={0,2}$")


def _check_ciphertexts(ctx: Context, data: dict) -> dict:
    """KMS ciphertexts (secrets[].secretEnv, availableSecrets.inline[].envMap) are `bytes` fields: the
    config must hold them base64-encoded. Python's protobuf parse is lenient about that; gcloud's base64
    decode and the API are not. Returns data with those values blanked, for the protobuf parse."""
    bad: set[int] = set()
    places = [("secrets", data.get("secrets"), "secretEnv")]
    available = data.get("availableSecrets")
    if isinstance(available, dict):
        places.append(("availableSecrets.inline", available.get("inline"), "envMap"))
    for where, items, field in places:
        for i, item in enumerate(items if isinstance(items, list) else []):
            values = item.get(field) if isinstance(item, dict) else None
            for name, value in values.items() if isinstance(values, dict) else []:
                text = "".join(str(value).split())
                if isinstance(value, str) and (not _BASE64.match(text) or len(text.rstrip("=")) % 4 == 1):
                    ctx.report("gcb-proto", value if isinstance(value, Str) else name,
                               f"{where}[{i}].{field}.{name} is {str(value)!r}, which is not base64: Cloud Build "
                               "reads it as bytes (the KMS-encrypted secret, base64-encoded), so the config is "
                               "rejected or the decryption fails the build; put the output of "
                               "`gcloud kms encrypt ... | base64` here")
                    bad.add(id(value))
    if not bad:
        return data

    def blank(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: "" if id(v) in bad else blank(v) for k, v in node.items()}
        if isinstance(node, list):
            return [blank(v) for v in node]
        return node

    return blank(data)


def _check_structure(ctx: Context, data: dict) -> None:
    for key in data:
        if key in _OUTPUT_ONLY:
            ctx.report("gcb-schema", key, f"{key!r} is set by Cloud Build when a build runs; remove it from the config")
    steps = data.get("steps")
    if "steps" not in data:
        ctx.report("gcb-schema", (0, 0), "the config has no `steps`; a build needs at least one step")
    elif steps is None or steps == []:
        ctx.report("gcb-schema", key_of(data, "steps"),
                   "`steps` is empty; Cloud Build rejects a build without at least one step")
    for i, step in enumerate(steps if isinstance(steps, list) else []):
        if not isinstance(step, dict):
            continue
        if "name" not in step:
            ctx.report("gcb-schema", ["steps", i],
                       f"steps[{i}] has no `name`: every step names the builder image it runs in (e.g. "
                       "`name: python:3.11` or `name: gcr.io/google.com/cloudsdktool/cloud-sdk`)")
        for key in step:
            if key in _STEP_OUTPUT_ONLY:
                ctx.report("gcb-schema", key, f"{key!r} is set by Cloud Build on each step; remove it")


_PROTO_AT = re.compile(r'at "?((?:Build|BuildTrigger)(?:\.\w+|\[\d+\])*)"?')
_PROTO_FIELD = re.compile(r'has no field named "([^"]+)"')
_PROTO_CHAIN = re.compile(r"Failed to parse (\w+) field: ")


def strict_parse(ctx: Context, data: dict, parseable: dict, message: str = "Build", rule: str = "gcb-proto",
                 skip_lines: set[int] = frozenset()) -> None:
    """Strict parse into a google.devtools.cloudbuild.v1 message; the error is mapped to its line
    (and not reported when an earlier layer already explained that line)."""
    from google.protobuf import json_format

    try:
        json_format.ParseDict(to_plain(parseable), message_class(message)())
    except json_format.ParseError as exc:
        text = str(exc)
        path: list[Any] = []
        at = _PROTO_AT.search(text)
        if at:
            for part in re.findall(r"\.(\w+)|\[(\d+)\]", at.group(1)[len(message):]):
                path.append(part[0] if part[0] else int(part[1]))
        chain = _PROTO_CHAIN.findall(text)
        if not at:
            path = chain
        elif chain and chain[-1] not in path:
            path.append(chain[-1])
        field = _PROTO_FIELD.search(text)
        inner = _PROTO_CHAIN.sub("", text).split(" at ")[0].split("\n")[0].rstrip(".")
        if field:
            path.append(field.group(1))
        if locate(data, path)[0] + 1 in skip_lines:
            return
        if field:
            ctx.report(rule, locate(data, path),
                       f"unknown key {field.group(1)!r} in {_dotted(path[:-1])}: Cloud Build's {message} has no "
                       "such field")
            return
        ctx.report(rule, locate(data, path), f"{_dotted(path)}: {inner} (strict parse into {message})")


def _dotted(path: list) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else p)
    return out or "the config"


class _Rules:
    def __init__(self, ctx: Context, data: dict) -> None:
        self.ctx = ctx
        self.data = data
        options = data.get("options") if isinstance(data.get("options"), dict) else {}
        self.loose = str(options.get("substitutionOption", "")).upper() == "ALLOW_LOOSE"
        self.dynamic = options.get("dynamicSubstitutions") is True
        self.automap = options.get("automapSubstitutions") is True
        subs = data.get("substitutions")
        self.subs: dict = subs if isinstance(subs, dict) else {}
        self.steps = [s for s in data.get("steps", []) if isinstance(s, dict)] if isinstance(
            data.get("steps"), list) else []

    def run(self) -> None:
        self.substitution_names()
        self.substitution_uses()
        self.step_ids()
        self.secrets()
        self.gcr()
        for step in self.steps:
            check_ignored_failures(self.ctx, step.get("script"), f"step {step.get('id') or step.get('name')}")
            self.script_substitutions(step)
            args = step.get("args")
            for arg in args if isinstance(args, list) else []:
                check_ignored_failures(self.ctx, arg, f"step {step.get('id') or step.get('name')}")

    def substitution_names(self) -> None:
        for key in self.subs:
            if not _USER_NAME.match(str(key)):
                self.ctx.report("gcb-substitution-name", key,
                                f"substitution name {key!r} is invalid: user-defined substitutions start with _ "
                                "and use only upper-case letters, digits and _ (e.g. _REGION)")

    def _strings(self, node: Any, path: list, shell: bool):
        if isinstance(node, dict):
            for k, v in node.items():
                if path == [] and k == "substitutions":
                    if self.dynamic:
                        yield from self._strings(v, ["substitutions"], False)
                    continue
                if k == "script":
                    continue  # not substituted: shell text
                in_step = len(path) == 2 and path[0] == "steps"
                yield from self._strings(v, path + [k], shell or (in_step and k in _SHELL_FIELDS))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from self._strings(v, path + [i], shell)
        elif isinstance(node, str):
            yield node, path, shell

    def substitution_uses(self) -> None:
        used: dict[str, list] = {}
        for text, path, shell in self._strings(self.data, [], False):
            for match in _REF.finditer(text):
                name = match.group(1) or match.group(3)
                if name is not None:
                    used.setdefault(name, []).append((text, path, shell, match))
        for name, uses in used.items():
            if name in BUILTINS or name in self.subs:
                continue
            exact = [u for u in uses if u[3].group(2) in (None, "}")]
            if not exact:
                continue  # only ${NAME:-x}-style: bash expansion (dynamicSubstitutions), not a template key
            text, path, shell, match = exact[0]
            uses = exact
            pos = source_position(self.ctx, text, match.start(), match.group(0)) if isinstance(text, Str) \
                else locate(self.data, path)
            more = f" (used {len(uses)} times; first use shown)" if len(uses) > 1 else ""
            if name.startswith("_"):
                if not self.loose:
                    self.ctx.report("gcb-undefined-substitution", pos,
                                    f"${name} is used but not defined under substitutions{more}; the trigger (or "
                                    "--substitutions) must supply it, else Cloud Build fails the build. Define a "
                                    "default under substitutions, or set options.substitutionOption: ALLOW_LOOSE")
                continue
            if self.dynamic:
                continue  # bash-style dynamic substitution leaves unknown names to the shell
            if self.loose:
                self.ctx.report("gcb-loose-substitution", pos,
                                f"${name} is not a substitution{more}; with ALLOW_LOOSE Cloud Build accepts the "
                                f"build and replaces it with an empty string; write $${name} if the shell should "
                                "see it")
                continue
            close = difflib.get_close_matches(name, sorted(BUILTINS), n=1, cutoff=0.75)
            if shell and not close:
                self.ctx.report("gcb-shell-dollar", pos,
                                f"${name} is not a Cloud Build substitution{more}, and Cloud Build substitutes $NAME "
                                f"before the shell runs, so it rejects the build; write $${name} for the shell "
                                "variable")
            else:
                hint = f" (did you mean ${close[0]}?)" if close else ""
                self.ctx.report("gcb-unknown-substitution", pos,
                                f"${name} is not a built-in substitution{hint}{more}; Cloud Build rejects the build. "
                                "User-defined substitutions start with _; a shell variable is written $$NAME")
        if self.loose:
            return
        scripts = " ".join(str(s.get("script", "")) for s in self.steps)
        for key in self.subs:
            if key not in used and not re.search(rf"\${{?{re.escape(str(key))}\b", scripts):
                self.ctx.report("gcb-unused-substitution", key,
                                f"substitution {key} is defined but never used: a manual build (gcloud builds "
                                "submit) fails with 'key in the substitution data is not matched in the template' "
                                "unless options.substitutionOption is ALLOW_LOOSE (triggered builds allow it); "
                                "use it or remove it")

    def script_substitutions(self, step: dict) -> None:
        """A `script` is not substituted: $_X / $PROJECT_ID there is a shell variable, set only when the
        substitutions are mapped to the environment (automapSubstitutions or env: [_X=$_X])."""
        script = step.get("script")
        if not isinstance(script, str):
            return
        automap = step.get("automapSubstitutions")
        if automap is True or (automap is None and self.automap):
            return
        env_names = set()
        options = self.data.get("options") if isinstance(self.data.get("options"), dict) else {}
        for env in (step.get("env"), options.get("env")):
            for item in env if isinstance(env, list) else []:
                env_names.add(str(item).split("=", 1)[0])
        for match in _SCRIPT_VAR.finditer(script):
            name = match.group(1)
            if name in env_names or not (name in BUILTINS or name in self.subs or _USER_NAME.match(name)):
                continue
            self.ctx.report("gcb-script-substitution", source_position(self.ctx, script, match.start(), match.group(0)),
                            f"${name} in the script of step {step.get('id') or step.get('name')}: Cloud Build does "
                            "not substitute inside `script`, so the shell sees an unset variable; set "
                            "automapSubstitutions: true (on the step or under options) or add "
                            f"env: ['{name}=${name}']")
            return

    def step_ids(self) -> None:
        seen: dict[str, Any] = {}
        for i, step in enumerate(self.steps):
            wait = step.get("waitFor")
            wait = [wait] if isinstance(wait, str) else wait  # gcb-wait-for-string
            for ref in wait if isinstance(wait, list) else []:
                if not isinstance(ref, str) or ref == "-" or ref in seen or "$" in ref:
                    continue
                later = any(s.get("id") == ref for s in self.steps[i + 1:])
                reason = "is defined only by a later step" if later else "is not the id of any step"
                self.ctx.report("gcb-wait-for", ref if isinstance(ref, Str) else key_of(step, "waitFor"),
                                f"waitFor names {ref!r}, which {reason}; known ids so far: "
                                f"{', '.join(seen) or 'none'} (use '-' to start at the beginning)")
            step_id = step.get("id")
            if isinstance(step_id, str):
                if step_id in seen:
                    self.ctx.report("gcb-duplicate-id", step_id if isinstance(step_id, Str) else key_of(step, "id"),
                                    f"step id {step_id!r} is already used by an earlier step; ids must be unique")
                seen[step_id] = step

    def secrets(self) -> None:
        declared: set[str] = set()
        available = self.data.get("availableSecrets")
        if isinstance(available, dict):
            for item in available.get("secretManager") or []:
                if isinstance(item, dict) and item.get("env"):
                    declared.add(str(item["env"]))
            for item in available.get("inline") or []:
                if isinstance(item, dict) and isinstance(item.get("envMap"), dict):
                    declared.update(map(str, item["envMap"]))
        for item in self.data.get("secrets") or [] if isinstance(self.data.get("secrets"), list) else []:
            if isinstance(item, dict) and isinstance(item.get("secretEnv"), dict):
                declared.update(map(str, item["secretEnv"]))
        for step in self.steps:
            names = step.get("secretEnv")
            for name in names if isinstance(names, list) else []:
                if str(name) not in declared:
                    self.ctx.report("gcb-secret-env", name if isinstance(name, Str) else key_of(step, "secretEnv"),
                                    f"secretEnv {str(name)!r} is not declared; add it under availableSecrets."
                                    f"secretManager (env: {name}) or availableSecrets.inline envMap")

    def gcr(self) -> None:
        images = self.data.get("images")
        for image in images if isinstance(images, list) else []:
            if isinstance(image, str) and re.match(r"^([a-z]+\.)?gcr\.io/", image.strip()):
                self.ctx.report("gcb-gcr-io", image,
                                f"image {image!r} has a gcr.io name: the push works only if the project's gcr.io "
                                "repositories are served by Artifact Registry (Container Registry is shut down); "
                                "LOCATION-docker.pkg.dev/PROJECT/REPO/IMAGE says where the image goes")
