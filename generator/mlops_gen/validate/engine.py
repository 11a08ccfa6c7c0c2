"""Run every layer over files and folders and collect the findings."""

from __future__ import annotations

import json
import os
import signal
import stat
from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from functools import partial
from pathlib import Path
from typing import NoReturn

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


def check_file(path: Path, options: Options, result: Result, *, explicit: bool, dialect: str | None = None,
               lint_ahead: Callable[[str], list[Finding] | None] | None = None) -> None:
    """Check one file. In a folder walk (`explicit=False`) files that are no CI file are skipped.
    `lint_ahead(text)`: yamllint's findings for the text if it parses, when another process computed them."""
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
    syntax_broken = yaml_error is not None
    chosen = dialect or (None if syntax_broken else detect.by_content(data)) or name_hint
    if chosen is None and infra_hint == detect.TRIGGER and (syntax_broken or detect.looks_like_trigger(data)):
        chosen = detect.TRIGGER
    # the dialect's modules (jsonschema, ...) are imported before the YAML layer's findings are waited for
    checker = _checker(chosen) if chosen is not None and isinstance(data, dict) and not syntax_broken else None

    lint = lint_ahead(text) if lint_ahead is not None and not syntax_broken else None
    if lint is None:
        lint = yamllint_findings(display, text, parsed=not syntax_broken)
    if yaml_error is not None and not any(f.severity == ERROR for f in lint):
        lint.append(Finding(display, yaml_error.line + 1, yaml_error.col + 1, "yaml-syntax",
                            f"not valid YAML: {yaml_error.message}"))
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
            checker(ctx)
    result.findings.extend(ctx.findings)


def _check_chunk(tasks: list[tuple[Path, bool, str | None]], options: Options, ahead: _LintAhead | None = None) -> Result:
    result = Result()
    for index, (path, explicit, dialect) in enumerate(tasks):
        check_file(path, options, result, explicit=explicit, dialect=dialect,
                   lint_ahead=partial(ahead.findings, index) if ahead is not None else None)
    return result


class _LintAhead:
    """yamllint's findings for the files named on the command line, computed by a forked process while
    this one parses and checks them: with a second CPU, the YAML layer (importing yamllint, PyYAML and
    pathspec, then linting; a fifth of checking one file) costs no wall time.

    The child lints each file as one that parses (yamllint's cosmetic rules only), behind the same
    guards as check_file. For a file that does not parse, one that changed between the two reads, and
    whenever the child fails, check_file lints in this process, as without a second CPU: the findings
    are the same either way."""

    def __init__(self, tasks: list[tuple[int, Path]], max_bytes: int) -> None:
        read_end, write_end = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(read_end)
            _lint_in_child(tasks, max_bytes, write_end)
        os.close(write_end)
        self.stream = os.fdopen(read_end, encoding="utf-8")
        self.expected = {index for index, _ in tasks}
        self.received: dict[int, tuple[int, list | None]] = {}
        self.ended = False

    @classmethod
    def start(cls, tasks: list[tuple[Path, bool, str | None]], max_bytes: int) -> _LintAhead | None:
        named = [(i, path) for i, (path, explicit, _) in enumerate(tasks) if explicit]
        if not named or not hasattr(os, "fork") or _cpus() < 2:
            return None
        try:
            return cls(named, max_bytes)
        except OSError:
            return None

    def findings(self, index: int, text: str) -> list[Finding] | None:
        if index not in self.expected:
            return None
        while index not in self.received and not self.ended:
            line = self.stream.readline()
            if not line.endswith("\n"):  # the child ended, or failed
                self.ended = True
                break
            got, text_hash, lint = json.loads(line)
            self.received[got] = (text_hash, lint)
        text_hash, lint = self.received.pop(index, (None, None))
        return [Finding(*fields) for fields in lint] if lint is not None and text_hash == hash(text) else None

    def close(self) -> None:
        self.stream.close()
        try:
            os.kill(self.pid, signal.SIGKILL)  # it may still lint files that turned out not to need it
        except OSError:
            pass
        os.waitpid(self.pid, 0)


def _lint_in_child(tasks: list[tuple[int, Path]], max_bytes: int, fd: int) -> NoReturn:
    code = 0
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            for index, path in tasks:
                text = _read(path, Result(), max_bytes)
                lint = None
                if text is not None and forbidden_character(text) is None and too_big(text) is None:
                    lint = [astuple(f) for f in yamllint_findings(str(path), text, parsed=True)]
                out.write(json.dumps([index, hash(text), lint]) + "\n")  # one line a file, as soon as it is linted
                out.flush()
    except BaseException:
        code = 1
    finally:
        os._exit(code)


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
    # imported here: a call that checks its files in this process (one file from pre-commit) does
    # not pay for multiprocessing and concurrent.futures (~15 ms)
    import multiprocessing

    if "fork" not in multiprocessing.get_all_start_methods():
        return None
    return multiprocessing.get_context("fork")


def _warm_up() -> None:
    from mlops_gen.validate import azure, azure_schema, azure_tasks, buildspec, cloudbuild  # noqa: F401

    azure_schema.validator()
    azure_tasks.catalogue()
    buildspec.validator()
    cloudbuild.schema_validator()
    cloudbuild.message_class("Build")


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
    heavy = [i for i, task in enumerate(tasks) if _heavy(task, options)]
    split_heavy = bool(heavy) and len(heavy) < len(tasks) and _cpus() > 1
    context = _fork_context() if workers > 1 or split_heavy else None
    if workers > 1 and context is not None:
        from concurrent.futures import ProcessPoolExecutor

        _warm_up()  # load schemas once, before forking, instead of once per worker
        chunks = [tasks[i::workers] for i in range(workers)]
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            parts = list(pool.map(_check_chunk, chunks, [options] * workers))
    elif split_heavy and context is not None:
        from concurrent.futures import ProcessPoolExecutor

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
        ahead = _LintAhead.start(tasks, options.max_bytes)
        try:
            parts = [_check_chunk(tasks, options, ahead)]
        finally:
            if ahead is not None:
                ahead.close()
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
