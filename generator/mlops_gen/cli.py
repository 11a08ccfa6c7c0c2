"""The `mlops-gen` command line: one click group, each verb in its own module."""

from __future__ import annotations

import importlib
import os
import sys
from typing import NoReturn

import click

from mlops_gen import __version__

# verb -> "module:attribute". Imported lazily so that `mlops-gen validate` does not pay for
# copier's import, and a broken verb cannot take the others down.
COMMANDS = {
    "new": "mlops_gen.new:new",
    "examples": "mlops_gen.examples:examples",
    "demo": "mlops_gen.demo:demo",
    "validate": "mlops_gen.validate.command:validate",
    "ci": "mlops_gen.localci.command:ci",
    "fleet": "mlops_gen.fleet.command:fleet",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="mlops-gen")
def main() -> None:
    """Generate ML repositories that run train -> test -> deploy on their cloud's CI."""


_SCRIPT = False  # set by `run`: the process is the `mlops-gen` command, not a caller in Python


def run() -> None:
    """The `mlops-gen` script (and `python -m mlops_gen`)."""
    global _SCRIPT
    _SCRIPT = True
    main()


def finish(code: int) -> NoReturn:
    """End a command that has written all its output and released what it opened.

    From the script, the process ends without the interpreter's teardown: freeing every object of
    jsonschema, ruamel, PyYAML and the schemas takes ~40 ms, a fifth of validating one file on each
    commit, for memory the OS takes back anyway (mypy ends the same way). Callers in Python (tests,
    click's CliRunner) get SystemExit as from any click command."""
    if _SCRIPT:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    sys.exit(code)
