"""Run every layer over files and folders and collect the findings."""

from __future__ import annotations

import multiprocessing
import os
import stat
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from mlops_gen.validate import detect
from mlops_gen.validate.context import Context, Options
from mlops_gen.validate.findings import ERROR, Finding, sort_findings
from mlops_gen.validate.yamlguard import forbidden_character, too_big
from mlops_gen.validate.yamllayer import yamllint_findings
from mlops_gen.validate.yamlpos import YamlError, load

PARALLEL_MIN_FILES = 40  # below this, forking workers costs more than it saves


@dataclass
class Result:
    findings: list[Finding] = field(default_factory=list)
    files: list[str] = field(default_factory=list)  # files that were checked
    unreadable: list[str] = field(default_factory=list)  # "path: reason"


def _checker(dialect: str):
    if dialect == detect.AWS:
        from mlops_gen.validate import buildspec

        return buildspec.check
    if dialect == detect.AZURE:
        from mlops_gen.validate import azure

        return azure.check
    if dialect == detect.GCP:
        from mlops_gen.validate import cloudbuild

        return cloudbuild.check
    from mlops_gen.validate import infra

    return infra.check_cfn if dialect == detect.CFN else infra.check_trigger


def _read(path: Path, result: Result, max_bytes: int) -> str | None:
    """The text of a regular file of at most `max_bytes`; devices, FIFOs and sockets are never
    opened (reading /dev/zero never ends, opening a FIFO blocks)."""
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            result.unreadable.append(f"{path}: not a regular file")
            return None
        if info.st_size > max_bytes:
            result.unreadable.append(f"{path}: {info.st_size:,} bytes, more than the limit of {max_bytes:,} "
                                     "(CI files are far smaller; raise it with --max-bytes)")
            return None
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except OSError as exc:
        result.unreadable.append(f"{path}: {exc.strerror or exc}")
        return None
    if len(raw) > max_bytes:  # grew since stat
        result.unreadable.append(f"{path}: more than the limit of {max_bytes:,} bytes (raise it with --max-bytes)")
        return None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        result.unreadable.append(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})")
        return None


def check_file(path: Path, options: Options, result: Result, *, explicit: bool, dialect: str | None = None) -> None:
    """Check one file. In a folder walk (`explicit=False`) files that are no CI file are skipped."""
    name_hint = detect.by_name(path)
    infra_hint = detect.by_infra_location(path) if options.infra else None
    text = _read(path, result, options.max_bytes)
    if text is None:
        return
    display = str(path)
    cfn = infra_hint == detect.CFN or (explicit and dialect is None and not name_hint and detect.looks_like_cfn(text))
    if cfn and infra_hint == detect.CFN and not detect.looks_like_cfn(text):
        return
    if not (explicit or cfn or name_hint or infra_hint or detect.might_be_ci(text)):
        return
    refused = forbidden_character(text)
    rule = "yaml-syntax"
    if refused is None:
        refused, rule = too_big(text), "yaml-too-complex"
    if refused is not None:  # nothing else may read this text: yamllint and ruamel would choke on it
        result.files.append(display)
        result.findings.append(Finding(display, refused.line + 1, refused.col + 1, rule, refused.message))
        return
    if cfn:
        result.files.append(display)
        ctx = Context(display, text, None, options)
        _checker(detect.CFN)(ctx)
        result.findings.extend(ctx.findings)
        return

    data = None
    yaml_error = None
    try:
        data = load(text)
    except YamlError as exc:
        yaml_error = exc
    lint = yamllint_findings(display, text, parsed=yaml_error is None)
    syntax_broken = yaml_error is not None
    if yaml_error is not None and not any(f.severity == ERROR for f in lint):
        lint.append(Finding(display, yaml_error.line + 1, yaml_error.col + 1, "yaml-syntax",
                            f"not valid YAML: {yaml_error.message}"))

    chosen = dialect or (None if syntax_broken else detect.by_content(data)) or name_hint
    if chosen is None and infra_hint == detect.TRIGGER and (syntax_broken or detect.looks_like_trigger(data)):
        chosen = detect.TRIGGER
    if chosen is None:
        if explicit:
            result.files.append(display)
            result.findings.extend(lint)
            if not syntax_broken:
                result.findings.append(Finding(
                    display, 1, 1, "ci-dialect",
                    "cannot tell whether this is a buildspec, an Azure Pipelines file or a Cloud Build config; "
                    "name it buildspec.yml, azure-pipelines.yml or cloudbuild.yaml, or pass --dialect"))
        return
    result.files.append(display)
    ctx = Context(display, text, data, options, lint)
    if not syntax_broken:
        if not isinstance(data, dict):
            what = "empty" if data is None else "not a mapping"
            ctx.report("ci-not-mapping", (0, 0), f"the file is {what}; a CI file is a mapping of top-level keys")
        else:
            _checker(chosen)(ctx)
    result.findings.extend(ctx.findings)


def _check_chunk(tasks: list[tuple[Path, bool, str | None]], options: Options) -> Result:
    result = Result()
    for path, explicit, dialect in tasks:
        check_file(path, options, result, explicit=explicit, dialect=dialect)
    return result


def _check_each(tasks: list[tuple[Path, bool, str | None]], options: Options) -> list[Result]:
    """One Result per task, so that results computed in two processes merge back in task order."""
    return [_check_chunk([task], options) for task in tasks]


def _heavy(task: tuple[Path, bool, str | None], options: Options) -> bool:
    """A task that may be a CloudFormation template: cfn-lint costs more than all the other layers
    together (importing it and sympy, loading its rules and resource schemas, then its run)."""
    path, explicit, dialect = task
    if options.infra and detect.by_infra_location(path) == detect.CFN:
        return True
    return explicit and dialect is None and detect.by_name(path) is None


def _fork_context():
    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


def _warm_up() -> None:
    from mlops_gen.validate import azure, azure_schema, azure_tasks, buildspec, cloudbuild  # noqa: F401

    azure_schema.validator()
    azure_tasks.catalogue()
    buildspec.validator()
    cloudbuild.schema_validator()


def _cpus() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _workers(n_files: int) -> int:
    return max(1, min(_cpus(), n_files // PARALLEL_MIN_FILES))


def validate_paths(paths: list[Path], options: Options, dialect: str | None = None) -> Result:
    """`dialect` forces the dialect of files named explicitly; files found in folders are detected.

    Many files (hundreds of repos in one call) are spread over the CPUs with forked workers."""
    result = Result()
    tasks: list[tuple[Path, bool, str | None]] = []
    folders: dict[Path, set[str]] = {}  # folder -> the files found in it
    for path in paths:
        if path.is_dir():
            found = list(detect.walk(path))
            folders[path] = {str(file) for file in found}
            tasks.extend((file, False, None) for file in found)
        elif path.exists():
            tasks.append((path, True, dialect))
        else:
            result.unreadable.append(f"{path}: no such file or directory")
    workers = _workers(len(tasks))
    context = _fork_context()
    heavy = [i for i, task in enumerate(tasks) if _heavy(task, options)]
    if workers > 1 and context is not None:
        _warm_up()  # load schemas once, before forking, instead of once per worker
        chunks = [tasks[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(pool.map(_check_chunk, chunks, [options] * workers))
    elif heavy and len(heavy) < len(tasks) and context is not None and _cpus() > 1:
        # A few files, one of them a CloudFormation template: cfn-lint (about three quarters of the
        # time) runs in a forked process, started before anything heavy is imported, while this one
        # checks the CI files. Results merge back in task order, so the output is the same.
        light = [i for i in range(len(tasks)) if i not in set(heavy)]
        with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
            future = pool.submit(_check_each, [tasks[i] for i in heavy], options)
            by_task = dict(zip(light, _check_each([tasks[i] for i in light], options), strict=True))
            by_task.update(zip(heavy, future.result(), strict=True))
        parts = [by_task[i] for i in range(len(tasks))]
    else:
        parts = [_check_chunk(tasks, options)]
    for part in parts:
        result.findings.extend(part.findings)
        result.files.extend(part.files)
        result.unreadable.extend(part.unreadable)
    result.files.sort()
    result.findings = sort_findings(result.findings)
    checked = set(result.files)
    for folder, found in folders.items():
        if not found & checked:
            result.unreadable.append(f"{folder}: no CI file in this folder (looked for buildspec, azure-pipelines "
                                     "and cloudbuild files by name and by content)")
    return result
