"""Scoring script of the Azure ML batch deployment: init() loads the registered bundle, run(mini_batch)
scores a list of input files with the local batch engine (batch.py), so a batch job on Azure and
`batch --target local` check, score and reject rows the same way.

For each input file `<name>.<ext>` it writes `<name>.<ext>` (id columns, prediction, proba_<class>) and,
when rows failed the model's schema, `<name>.rejects.<ext>` (the rows with `_row` and `_reason`) into the
job's output folder (AZUREML_BI_OUTPUT_PATH). Azure ML loads this file by path, so the package is
imported absolutely; what it needs of mlops.yaml comes as environment variables (batch.py of this
folder). It returns one summary line per file: Azure ML counts a file as done by its line.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[3]
PACKAGE = Path(__file__).resolve().parents[2].name
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

_state: dict = {}


def init() -> None:
    model_lib = importlib.import_module(f"{PACKAGE}.model")
    found = sorted(Path(os.environ.get("AZUREML_MODEL_DIR", ".")).rglob("model.joblib"))
    if not found:
        raise FileNotFoundError(f"no model.joblib under {os.environ.get('AZUREML_MODEL_DIR')}")
    _state["pipeline"], _state["meta"] = model_lib.load(found[0].parent)
    _state["engine"] = importlib.import_module(f"{PACKAGE}.batch")
    _state["output"] = Path(os.environ["AZUREML_BI_OUTPUT_PATH"])
    _state["ids"] = json.loads(os.environ.get("BATCH_ID_COLUMNS", "[]"))
    _state["extra"] = set(json.loads(os.environ.get("BATCH_ALLOWED_EXTRA", "[]")))
    _state["chunk_rows"] = int(os.environ.get("BATCH_CHUNK_ROWS", "50000"))
    _state["sep"] = os.environ.get("BATCH_SEP", ",")


def run(mini_batch: list[str]) -> list[str]:
    """A file the engine cannot read (or whose id columns are missing) raises: Azure ML retries the
    mini-batch and, past batch.max_retries, fails the job with this error."""
    engine, lines = _state["engine"], []
    for location in mini_batch:
        if Path(location).suffix.lower() not in engine.FORMATS:
            lines.append(f"{Path(location).name}: skipped, not .csv, .parquet or .jsonl")
            continue
        summary = engine.score(_state["pipeline"], _state["meta"], [str(location)],
                               str(_state["output"] / Path(location).name), _state["ids"], _state["extra"],
                               _state["chunk_rows"], _state["sep"])
        lines.append(f"{Path(location).name}: read {summary.read}, scored {summary.scored}, "
                     f"rejected {summary.rejected}")
    return lines
