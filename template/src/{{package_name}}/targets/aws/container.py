"""The code that runs inside SageMaker's prebuilt scikit-learn container (no Docker build).

One file, three roles:
- training job (script mode): `python container.py [train]` from the unpacked source
  directory (this file, mlops.yaml, src/<package>/, requirements.txt). Fits the project's own
  pipeline with the container's scikit-learn and writes the bundle to SM_MODEL_DIR, with this file
  as `code/inference.py`, so the model.tar.gz the job leaves is what the endpoint serves;
- processing jobs of the SageMaker Pipeline: `preprocess` (split the data) and `evaluate` (write
  evaluation.json, which the pipeline's gate condition reads);
- serving: the container's inference toolkit imports this file as `inference.py` and calls
  model_fn / input_fn / predict_fn / output_fn. That part imports only what the container has
  (joblib, numpy, pandas) and the project's schema.py, copied beside it as `model_schema.py`: it
  answers {"instances": [...]} with {"predictions": [...]}, the same contract as serving.py; asked
  for text/csv (Batch Transform, targets/aws/batch.py) it answers one line per row: the prediction,
  then for a classifier the probability of each class.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

JSON = "application/json"
CSV = "text/csv"
PROCESSING = Path("/opt/ml/processing")


# -- serving ---------------------------------------------------------------------------------------
def model_fn(model_dir: str) -> dict:
    import joblib

    folder = Path(model_dir)
    return {
        "pipeline": joblib.load(folder / "model.joblib"),
        "meta": json.loads((folder / "model.json").read_text()),
    }


def input_fn(body, content_type: str) -> list:
    text = body.decode() if isinstance(body, (bytes, bytearray)) else str(body)
    if content_type.startswith(JSON):
        payload = json.loads(text)
        return payload.get("instances") if isinstance(payload, dict) else payload
    if content_type.startswith(CSV):
        return [row for row in csv.reader(io.StringIO(text)) if any(value.strip() for value in row)]
    raise ValueError(f"unsupported content type {content_type!r}; send {JSON} or {CSV}")


class Predictions(list):
    """predict_fn's answer: the predictions (all a JSON client gets), and for a classifier the way to
    its class probabilities, computed only when a CSV client asks (`probabilities()`)."""

    def __init__(self, values, probabilities=None) -> None:
        super().__init__(values)
        self.probabilities = probabilities


def _plain(value):
    return value.item() if hasattr(value, "item") else value


def predict_fn(instances, model: dict) -> list:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import model_schema  # the project's schema.py, packaged beside this file

    frame = model_schema.rows_to_frame(instances, model["meta"]["schema"])
    pipeline = model["pipeline"]
    probabilities = None
    if model["meta"].get("task") == "classification" and hasattr(pipeline, "predict_proba"):
        probabilities = lambda: pipeline.predict_proba(frame).tolist()  # noqa: E731
    return Predictions([_plain(value) for value in pipeline.predict(frame)], probabilities)


def output_fn(prediction: list, accept: str):
    if accept and accept.startswith(CSV):
        probabilities = getattr(prediction, "probabilities", None)
        rows = ([[p, *q] for p, q in zip(prediction, probabilities(), strict=True)] if probabilities
                else [[p] for p in prediction])
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows(rows)
        # no newline after the last row: Batch Transform (AssembleWith Line) adds one per response
        return buffer.getvalue().removesuffix("\n"), CSV
    if accept and accept not in ("*/*", JSON) and not accept.startswith(JSON):
        raise ValueError(f"unsupported accept type {accept!r}; ask for {JSON} or {CSV}")
    return json.dumps({"predictions": prediction}), JSON


# -- training and processing -------------------------------------------------------------------------
def _package(code_dir: Path):
    """Import the project's package from the unpacked source directory."""
    import importlib

    found = sorted(p.parent.name for p in (code_dir / "src").glob("*/__main__.py"))
    if len(found) != 1:
        raise SystemExit(f"{code_dir}/src: expected one package, found {found}")
    sys.path.insert(0, str(code_dir / "src"))
    return importlib.import_module(found[0])


def _install_requirements(code_dir: Path) -> None:
    """Processing jobs do not install requirements.txt by themselves (training jobs do)."""
    requirements = code_dir / "requirements.txt"
    if requirements.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)


def _load(code_dir: Path):
    package = _package(code_dir)
    from importlib import import_module

    config_lib = import_module(f"{package.__name__}.config")
    return (
        config_lib.load(code_dir / "mlops.yaml"),
        import_module(f"{package.__name__}.data"),
        import_module(f"{package.__name__}.model"),
    )


def _frame(path: Path, target: str):
    import pandas as pd

    files = sorted(path.glob("*.csv")) if path.is_dir() else [path]
    frame = pd.concat([pd.read_csv(f) for f in files], ignore_index=True)
    return frame.drop(columns=[target]), frame[target]


def train(code_dir: Path, model_dir: Path, channel: Path | None) -> None:
    config, data_lib, model_lib = _load(code_dir)
    if channel is not None and any(channel.glob("*.csv")):
        X_train, y_train = _frame(channel, config.data.target)
    else:
        X, y = data_lib.load_frame(config)
        X_train, _, y_train, _ = data_lib.split(config, X, y)
    pipeline, meta = model_lib.fit(config, X_train, y_train)
    model_lib.save(pipeline, meta, model_dir)
    (model_dir / "code").mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(__file__), model_dir / "code" / "inference.py")
    shutil.copy(Path(model_lib.__file__).with_name("schema.py"), model_dir / "code" / "model_schema.py")


def preprocess(code_dir: Path, out: Path) -> None:
    config, data_lib, _ = _load(code_dir)
    X, y = data_lib.load_frame(config)
    X_train, X_test, y_train, y_test = data_lib.split(config, X, y)
    for name, features, labels in (("train", X_train, y_train), ("test", X_test, y_test)):
        (out / name).mkdir(parents=True, exist_ok=True)
        features.assign(**{config.data.target: labels}).to_csv(out / name / f"{name}.csv", index=False)


def evaluate(code_dir: Path, model_archive: Path, test: Path, out: Path) -> None:
    import tarfile

    config, _, model_lib = _load(code_dir)
    folder = out / "model"
    with tarfile.open(next(model_archive.glob("*.tar.gz"))) as archive:
        archive.extractall(folder, filter="data")
    pipeline, meta = model_lib.load(folder)
    X_test, y_test = _frame(test, config.data.target)
    metrics = model_lib.compute_metrics(pipeline, meta, X_test, y_test)
    shutil.rmtree(folder)
    (out / "evaluation").mkdir(parents=True, exist_ok=True)
    (out / "evaluation" / "evaluation.json").write_text(json.dumps({"metrics": metrics}, indent=2))


def main(argv: list[str]) -> None:
    mode = argv[0] if argv and not argv[0].startswith("-") else "train"
    code_dir = Path(__file__).resolve().parent
    if mode == "train":  # the training toolkit has installed requirements.txt and set SM_*
        channel = os.environ.get("SM_CHANNEL_TRAIN")
        train(
            code_dir,
            Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model")),
            Path(channel) if channel else None,
        )
    elif mode == "preprocess":
        _install_requirements(code_dir)
        preprocess(code_dir, PROCESSING)
    elif mode == "evaluate":
        _install_requirements(code_dir)
        evaluate(code_dir, PROCESSING / "model", PROCESSING / "test", PROCESSING)
    else:
        raise SystemExit(f"unknown mode {mode!r}: expected train, preprocess or evaluate")


if __name__ == "__main__":
    main(sys.argv[1:])
