"""Scoring script of the Azure ML online deployment: init() and run() around the one predict().

Azure ML loads this file by path (`code_configuration` uploads `src/`), so the package is imported
absolutely. AZUREML_MODEL_DIR holds the registered bundle (model.joblib, model.json). Requests take
{"data": [...]}, {"input_data": {"data": [...]}} or {"instances": [...]}; answers are
{"predictions": [...], "model_version": ...}, the contract of every target.

Capture: when the deployment collects data (CAPTURE=1, set with its `data_collector`), every answered
request is logged with azureml-ai-monitoring's Collector: the rows as `model_inputs` (one column per
feature, the names of the model's schema) and the predictions as `model_outputs`. Azure ML samples
and stores them; a failure to log is written to the log and never fails the request.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
from pathlib import Path

_SRC = Path(__file__).resolve().parents[3]
PACKAGE = Path(__file__).resolve().parents[2].name
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))

_state: dict = {}
log = logging.getLogger(__name__)
PREDICTION = "model_prediction"  # = targets/azure/monitor.py PREDICTION (this file imports nothing of it)


def _find_bundle(root: Path) -> Path:
    found = sorted(root.rglob("model.joblib"))
    if not found:
        raise FileNotFoundError(f"no model.joblib under {root}")
    return found[0].parent


def init() -> None:
    model_lib = importlib.import_module(f"{PACKAGE}.model")
    bundle = _find_bundle(Path(os.environ.get("AZUREML_MODEL_DIR", ".")))
    _state["pipeline"], _state["meta"] = model_lib.load(bundle)
    _state["version"] = os.environ.get("MODEL_VERSION") or os.environ.get("AZUREML_MODEL_DIR", "").rstrip("/")
    _state["serving"] = importlib.import_module(f"{PACKAGE}.serving")
    _state["collectors"] = _collectors() if os.environ.get("CAPTURE") == "1" else None


def _collectors() -> tuple:
    """The deployment's model_inputs and model_outputs collections (a missing package fails init: loudly)."""
    from azureml.ai.monitoring import Collector

    def on_error(exc: Exception) -> None:
        log.warning("data collection failed: %s", exc)

    return Collector(name="model_inputs", on_error=on_error), Collector(name="model_outputs", on_error=on_error)


def _capture(rows, predictions: list) -> None:
    """Log one answered request; never raises (capture must not fail a request)."""
    try:
        import pandas as pd

        schema = importlib.import_module(f"{PACKAGE}.schema")
        inputs, outputs = _state["collectors"]
        context = inputs.collect(schema.rows_to_frame(rows, _state["meta"]["schema"]))
        outputs.collect(pd.DataFrame({PREDICTION: predictions}), context)
    except Exception as exc:  # whatever the collector does, the answer goes out
        log.warning("data collection failed: %s", exc)


def run(raw_data: str | bytes) -> dict:
    """An error answer is a dict with `error`; Azure ML still returns 200, so the caller checks the keys."""
    serving = _state["serving"]
    try:
        payload = json.loads(raw_data)
    except (TypeError, ValueError):
        return {"error": "body is not valid JSON"}
    if isinstance(payload, dict) and isinstance(payload.get("input_data"), dict):
        payload = payload["input_data"]
    rows = payload.get("data", payload.get("instances")) if isinstance(payload, dict) else payload
    try:
        predictions = serving.predict(_state["pipeline"], _state["meta"], rows)
    except serving.BadRequest as exc:
        return {"error": str(exc)}
    if _state.get("collectors"):
        _capture(rows, predictions)
    return {"predictions": predictions, "model_version": _state["version"]}
