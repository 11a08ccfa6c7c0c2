"""Bring your own model: a scikit-learn estimator or Pipeline trained elsewhere, saved with joblib,
that knows its feature names (fitted on a DataFrame: `feature_names_in_`), or a model bundle of
another repository generated from this template (a folder with model.joblib and model.json).

Loading a joblib file runs code from it (it is a pickle): import only models from people you trust;
the file's SHA-256 goes into the version's lineage so the registry says exactly which file it was.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path

import joblib

from . import contract
from . import model as model_lib
from . import schema as schema_lib
from .config import Config
from .errors import ConfigError


def _local_copy(source: str, folder: Path) -> Path:
    if "://" not in source:
        path = Path(source)
        if not path.exists():
            raise ConfigError(f"--from {source}: not found")
        return path
    import fsspec

    fs, path = fsspec.core.url_to_fs(source)
    target = folder / Path(path).name
    fs.get(path, str(target), recursive=fs.isdir(path))
    return target


def load(source: str):
    """(the fitted estimator, where it came from: source, file, sha256)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = _local_copy(source, Path(tmp))
        file = path / "model.joblib" if path.is_dir() else path
        if not file.is_file():
            raise ConfigError(f"--from {source}: a folder must hold model.joblib (a model bundle)")
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        try:
            estimator = joblib.load(file)
        except Exception as exc:  # a pickle can fail in any way: name the file and the cause
            raise ConfigError(f"--from {source}: cannot load {file.name} with joblib ({type(exc).__name__}: {exc})") from None
        bundle_meta = path / "model.json"
        names = json.loads(bundle_meta.read_text()).get("features") if path.is_dir() and bundle_meta.is_file() else None
    if not (hasattr(estimator, "predict") and hasattr(estimator, "fit")):
        raise ConfigError(f"--from {source}: {type(estimator).__name__} is not a scikit-learn estimator or Pipeline")
    if names and not hasattr(estimator, "feature_names_in_"):
        estimator.feature_names_in_ = names  # a bundle records them in model.json
    return estimator, {"source": source, "file": file.name, "sha256": digest}


def feature_names(estimator, source: str, configured: list[str]) -> list[str]:
    """The model's features, in its order; exit 2 unless they are exactly the configured data's."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        raise ConfigError(f"--from {source}: the model does not record its feature names; fit it on a pandas "
                          "DataFrame (scikit-learn then keeps feature_names_in_) and save it again")
    names = [str(n) for n in names]
    missing = [n for n in configured if n not in names]
    extra = [n for n in names if n not in configured]
    if missing or extra:
        parts = ([f"features of the configured data it does not take: {', '.join(missing[:10])}"] if missing else [])
        parts += [f"features it needs that the data (data.features) lacks: {', '.join(extra[:10])}"] if extra else []
        raise ConfigError(f"--from {source}: the model's features do not match mlops.yaml data: {'; '.join(parts)}")
    return names


def meta(config: Config, estimator, X_train, y_train) -> dict:
    """model.json for the imported model: the schema from the configured data, in the model's order."""
    schema = schema_lib.infer(X_train)
    result = {"task": config.task, "features": [c["name"] for c in schema], "schema": schema}
    if config.task == "classification":
        classes = getattr(estimator, "classes_", None)
        if classes is None:
            raise ConfigError("--from: task is classification but the model has no classes_ (is it a regressor?)")
        labels = {schema_lib._category(c) for c in y_train.unique()}
        unknown = [c for c in classes if schema_lib._category(c) not in labels]
        if unknown:
            raise ConfigError(f"--from: the model predicts classes the data's {config.data.target!r} does not have: "
                              f"{', '.join(map(str, unknown[:5]))}")
        result["classes"] = [contract.plain(c) for c in classes]
        pos = model_lib.positive_class(config, y_train)
        result["positive_class"] = None if pos is None else contract.plain(pos)
    elif hasattr(estimator, "classes_"):
        raise ConfigError("--from: task is regression but the model is a classifier")
    return result
