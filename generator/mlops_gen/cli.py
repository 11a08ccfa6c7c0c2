"""The `mlops-gen` command line: one click group, each verb in its own module."""

from __future__ import annotations

import importlib

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
