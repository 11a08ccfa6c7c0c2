"""`mlops-gen validate`: strict offline validation of CI files."""

from __future__ import annotations

import gc
from contextlib import contextmanager
from pathlib import Path

import click

from mlops_gen.cli import finish
from mlops_gen.validate.detect import DIALECTS
from mlops_gen.validate.findings import count, counts_against, render_json, render_text
from mlops_gen.validate.rules import RULES

HELP = """Validate buildspec.yml, azure-pipelines.yml and cloudbuild.yaml offline.

PATH is a file or a folder; in a folder every CI file is found by name and by content,
recursively, including CloudFormation templates under infra/aws/ (cfn-lint) and Cloud Build
trigger files under infra/gcp/.

Each finding is printed as `path:line:col: RULE: message`, sorted, at one of three levels:
errors, what the CI service rejects or what makes the run fail; warnings (`warning:`), what the
service accepts but is very likely wrong at run time; notes (`note:`), advice and style. Exit
status: 0 when there is no error (warnings fail only with --strict, notes never), 1 when there
are findings that count, 2 for bad usage or a path that holds no readable CI file.

Settings can also live in the nearest pyproject.toml:

\b
  [tool.mlops-gen.validate]
  allow-tasks = ["ms-air-aiagility.*"]   # Azure tasks outside the built-in list
  disable = ["bs-default-shell"]         # rule ids, see --list-rules
  strict = true                          # warnings fail too
"""


@click.command(help=HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Output format.")
@click.option("--strict", is_flag=True, default=None, help="Warnings count as findings (exit 1); notes never do.")
@click.option("--dialect", type=click.Choice(DIALECTS), default=None,
              help="Force the dialect of the files named on the command line (aws=buildspec, "
                   "azure=Azure Pipelines, gcp=Cloud Build).")
@click.option("--allow-task", "allow_tasks", multiple=True, metavar="PATTERN",
              help="Allow an Azure task outside the built-in list (glob, case-insensitive; repeatable).")
@click.option("--disable", "disable", multiple=True, metavar="RULE", help="Do not report RULE (repeatable).")
@click.option("--no-infra", is_flag=True, help="Skip infra/aws (cfn-lint) and infra/gcp (trigger) files.")
@click.option("--config", "config_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="pyproject.toml to read [tool.mlops-gen.validate] from (default: the nearest one).")
@click.option("--max-bytes", type=click.IntRange(min=1), default=None, metavar="N",
              help="Refuse files larger than N bytes (exit 2) [default: 2000000].")
@click.option("--list-rules", is_flag=True, help="List every rule with its severity and doc, then exit.")
def validate(paths, fmt, strict, dialect, allow_tasks, disable, no_infra, config_path, max_bytes,
             list_rules) -> None:
    if list_rules:
        for rule in RULES.values():
            click.echo(f"{rule.id:28} {rule.severity:8} {rule.dialect:6} {rule.doc}")
        click.echo(f"{'cfn-<id>':28} {'by id':8} {'infra':6} cfn-lint's own rules (E* errors, W*/I* warnings).")
        return
    if not paths:
        raise click.UsageError("give at least one file or folder to validate")
    with _few_collections():
        _validate(paths, fmt, strict, dialect, allow_tasks, disable, no_infra, config_path, max_bytes)


@contextmanager
def _few_collections():
    """A run builds parse trees, schemas and the task catalogue, nearly all freed by reference counting:
    the cyclic collector runs less often meanwhile (mypy's setting). No result depends on it; the
    threshold is restored for in-process callers."""
    threshold = gc.get_threshold()
    gc.set_threshold(200_000, 30, 30)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)


def _validate(paths, fmt, strict, dialect, allow_tasks, disable, no_infra, config_path, max_bytes) -> None:
    from mlops_gen.validate.config import ConfigError, find_pyproject, load_section
    from mlops_gen.validate.context import MAX_BYTES, Options
    from mlops_gen.validate.engine import validate_paths

    try:
        section = load_section(config_path or find_pyproject(Path.cwd()))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None
    unknown = [r for r in (*disable, *section.get("disable", [])) if r not in RULES and not r.startswith("cfn-")]
    if unknown:
        raise click.UsageError(f"unknown rule id(s): {', '.join(unknown)} (see --list-rules)")
    options = Options(
        allow_tasks=(*section.get("allow-tasks", []), *allow_tasks),
        disable=frozenset((*section.get("disable", []), *disable)),
        strict=section.get("strict", False) if strict is None else strict,
        infra=not no_infra,
        max_bytes=max_bytes or MAX_BYTES,
    )
    result = validate_paths(list(paths), options, dialect)
    if fmt == "json":
        click.echo(render_json(result.findings, result.files), nl=False)
    else:
        click.echo(render_text(result.findings), nl=False)
    for problem in result.unreadable:
        click.echo(f"mlops-gen validate: {problem}", err=True)
    if result.unreadable:
        finish(2)
    counted = [f for f in result.findings if counts_against(f, options.strict)]
    if fmt == "text":
        n = count(result.findings)
        click.echo(f"{len(result.files)} file(s) checked: {n['errors']} error(s), {n['warnings']} warning(s), "
                   f"{n['notes']} note(s)" + (" (strict)" if options.strict else ""), err=True)
    finish(1 if counted else 0)
