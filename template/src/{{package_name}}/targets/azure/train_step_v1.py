"""Entry script of the v1 training step (PythonScriptStep): the `train` stage in-process, then the
bundle goes to the step's output (`--output`). Runs on the cluster with the repository as cwd."""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[3]
PACKAGE = Path(__file__).resolve().parents[2].name
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", required=True, type=Path)
    args = parser.parse_args(argv)
    code = importlib.import_module(f"{PACKAGE}.__main__").main(["train", "--target", "local"])
    if code == 0:
        shutil.copytree(Path("artifacts") / "model", args.output, dirs_exist_ok=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
