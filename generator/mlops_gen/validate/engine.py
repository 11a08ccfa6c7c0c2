"""Run every layer over files and folders and collect the findings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mlops_gen.validate import detect
from mlops_gen.validate.context import Context, Options
from mlops_gen.validate.findings import ERROR, Finding, sort_findings
from mlops_gen.validate.yamllayer import yamllint_findings
from mlops_gen.validate.yamlpos import YamlError, load


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


def _read(path: Path, result: Result) -> str | None:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        result.unreadable.append(f"{path}: {exc.strerror or exc}")
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
    text = _read(path, result)
    if text is None:
        return
    display = str(path)
    if infra_hint == detect.CFN or (explicit and dialect is None and not name_hint and detect.looks_like_cfn(text)):
        if infra_hint == detect.CFN and not detect.looks_like_cfn(text):
            return
        result.files.append(display)
        ctx = Context(display, text, None, options)
        _checker(detect.CFN)(ctx)
        result.findings.extend(ctx.findings)
        return
    if not explicit and not (name_hint or infra_hint) and not detect.might_be_ci(text):
        return

    lint = yamllint_findings(display, text)
    syntax_broken = any(f.rule == "yaml-syntax" for f in lint)
    data = None
    if not syntax_broken:
        try:
            data = load(text)
        except YamlError as exc:
            syntax_broken = True
            # yamllint may already explain this line (e.g. an undeclared alias)
            if not any(f.line == exc.line + 1 and f.severity == ERROR for f in lint):
                lint.append(Finding(display, exc.line + 1, exc.col + 1, "yaml-syntax",
                                    f"not valid YAML: {exc.message}"))

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


def validate_paths(paths: list[Path], options: Options, dialect: str | None = None) -> Result:
    """`dialect` forces the dialect of files named explicitly; files found in folders are detected."""
    result = Result()
    for path in paths:
        if path.is_dir():
            for file in detect.walk(path):
                check_file(file, options, result, explicit=False)
        elif path.exists():
            check_file(path, options, result, explicit=True, dialect=dialect)
        else:
            result.unreadable.append(f"{path}: no such file or directory")
    result.findings = sort_findings(result.findings)
    return result
