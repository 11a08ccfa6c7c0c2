"""`mlops-gen new DEST`: start a repository from the template (a thin wrapper over copier's run_copy)."""

from __future__ import annotations

import re
import shutil
import sys
from pathlib import Path

import click

from mlops_gen import TEMPLATE_ROOT
from mlops_gen.answers import AnswerError, explain, parse_data, questions

_REMOTE = re.compile(r"^(?:[\w+.-]+://|git@|gh:|gl:)")


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--defaults", is_flag=True, help="Use the default of every question not given with --data.")
@click.option("--data", "-d", "pairs", multiple=True, metavar="KEY=VALUE", help="Answer a question (repeatable).")
@click.option("--vcs-ref", help="Template version (git tag or commit); default: copier's (latest release tag).")
@click.option(
    "--template", "template", default=str(TEMPLATE_ROOT), show_default="the template shipped with this mlops-gen",
    help="Template source: a path or git URL.",
)
def new(dest: Path, defaults: bool, pairs: tuple[str, ...], vcs_ref: str | None, template: str) -> None:
    """Generate a new ML repository in DEST (which must not exist or be empty)."""
    from mlops_gen import copier_seam

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        fail(f"{dest} exists and is not empty; choose a new folder")
    remote = bool(_REMOTE.match(template))
    local_template = Path(template)
    if not remote and not (local_template / "copier.yml").is_file():
        # never copy whatever folder this is (a broken install would copy site-packages)
        fail(f"--template {template}: no copier.yml there, so it is not an mlops-gen template")
    try:
        known = {} if remote else questions(local_template)
        answers = parse_data(pairs, known) if known else dict(p.partition("=")[::2] for p in pairs)
    except AnswerError as exc:
        fail(str(exc))
    created = not dest.exists()
    try:
        copier_seam.copy(template if remote else local_template.resolve(), dest, data=answers,
                         defaults=defaults, vcs_ref=vcs_ref)
    except copier_seam.UserError as exc:
        if created and dest.exists():
            shutil.rmtree(dest)
        fail(explain(exc))
    except KeyboardInterrupt:
        if created and dest.exists():
            shutil.rmtree(dest)
        raise
    click.echo(f"Created {dest}. Next steps:")
    click.echo(f"  cd {dest}")
    click.echo("  git init && git add -A && git commit -m 'Start from mlops-gen'")
    click.echo("  make install test pipeline    # offline, local target")
    click.echo("  then read README.md, 'Set up on <cloud>', to connect the repository to its CI")


def fail(message: str) -> None:
    """One line on stderr naming the question, exit 2 (the contract for bad input)."""
    click.echo(f"error: {message}", err=True)
    sys.exit(2)
