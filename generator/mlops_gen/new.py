"""`mlops-gen new DEST`: start a repository from the template (a thin wrapper over copier's run_copy)."""

from __future__ import annotations

import contextlib
import io
import shutil
import sys
import warnings
from pathlib import Path

import click

from mlops_gen import TEMPLATE_ROOT
from mlops_gen.answers import AnswerError, explain, parse_data, questions


@click.command()
@click.argument("dest", type=click.Path(path_type=Path))
@click.option("--defaults", is_flag=True, help="Use the default of every question not given with --data.")
@click.option("--data", "-d", "pairs", multiple=True, metavar="KEY=VALUE", help="Answer a question (repeatable).")
@click.option("--vcs-ref", help="Template version (git tag or commit); default: copier's (latest release tag).")
@click.option(
    "--template", "template", default=str(TEMPLATE_ROOT), show_default="this checkout",
    help="Template source: a path or git URL.",
)
def new(dest: Path, defaults: bool, pairs: tuple[str, ...], vcs_ref: str | None, template: str) -> None:
    """Generate a new ML repository in DEST (which must not exist or be empty)."""
    import copier

    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        fail(f"{dest} exists and is not empty; choose a new folder")
    local_template = Path(template)
    try:
        known = questions(local_template) if (local_template / "copier.yml").exists() else {}
        answers = parse_data(pairs, known) if known else dict(p.partition("=")[::2] for p in pairs)
    except AnswerError as exc:
        fail(str(exc))
    created = not dest.exists()
    chatter = io.StringIO()  # copier's notes ("No git tags found ...") are noise for a user
    try:
        with warnings.catch_warnings(), contextlib.redirect_stderr(chatter):
            warnings.simplefilter("ignore")
            copier.run_copy(
                str(local_template.resolve()) if local_template.exists() else template,
                str(dest), data=answers, defaults=defaults, vcs_ref=vcs_ref,
                unsafe=True, quiet=True, cleanup_on_error=True,
            )
    except (ValueError, copier.errors.UserMessageError) as exc:
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
