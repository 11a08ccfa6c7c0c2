"""Vertex AI Pipelines (KFP v2): prepare -> train -> evaluate -> gate -> upload.

The components run this repository's own code: `target.py` packs `src/<package>` and
mlops.yaml into a source archive on GCS, and every component unpacks it and calls the same
functions the stages call (data.load_frame/split, model.build/save, model.compute_metrics, and
GcpTarget.register for the upload). Nothing about the model lives in this file.

No `from __future__ import annotations` here: KFP reads the components' annotations as types.
"""

import re
import tomllib
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import NamedTuple

from kfp import compiler, dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from ...config import Config
from ...errors import ConfigError

# Names of the pipeline's tasks: targets/gcp.py reads their outputs after a run.
TRAIN_TASK, UPLOAD_TASK = "train", "upload"


def prepare(source: Input[Artifact], train_data: Output[Dataset], test_data: Output[Dataset]):
    import importlib
    import json
    import sys
    import tarfile
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    with tarfile.open(source.path) as archive:
        archive.extractall(root, filter="data")
    sys.path.insert(0, str(root))
    package = json.loads((root / "manifest.json").read_text())["package"]
    config = importlib.import_module(f"{package}.config").load(root / "mlops.yaml")
    if config.data.source.startswith("gs://"):  # Vertex AI mounts Cloud Storage at /gcs (FUSE)
        config.data.source = "/gcs/" + config.data.source.removeprefix("gs://")
    data = importlib.import_module(f"{package}.data")
    X, y = data.load_frame(config)
    X_train, X_test, y_train, y_test = data.split(config, X, y)
    X_train.assign(**{config.data.target: y_train}).to_parquet(train_data.path)
    X_test.assign(**{config.data.target: y_test}).to_parquet(test_data.path)


def train(source: Input[Artifact], train_data: Input[Dataset], model: Output[Model]):
    import importlib
    import json
    import sys
    import tarfile
    import tempfile
    from pathlib import Path

    import pandas as pd

    root = Path(tempfile.mkdtemp())
    with tarfile.open(source.path) as archive:
        archive.extractall(root, filter="data")
    sys.path.insert(0, str(root))
    package = json.loads((root / "manifest.json").read_text())["package"]
    config = importlib.import_module(f"{package}.config").load(root / "mlops.yaml")
    model_lib = importlib.import_module(f"{package}.model")
    frame = pd.read_parquet(train_data.path)
    X, y = frame.drop(columns=[config.data.target]), frame[config.data.target]
    pipeline, meta = model_lib.fit(config, X, y)
    model_lib.save(pipeline, meta, Path(model.path))  # model.joblib + model.json
    model.metadata["framework"] = "scikit-learn"


def evaluate(
    source: Input[Artifact], model: Input[Model], test_data: Input[Dataset], metrics: Output[dsl.Metrics]
) -> NamedTuple("Outputs", [("value", float), ("metrics_json", str)]):
    import importlib
    import json
    import sys
    import tarfile
    import tempfile
    from collections import namedtuple
    from pathlib import Path

    import pandas as pd

    root = Path(tempfile.mkdtemp())
    with tarfile.open(source.path) as archive:
        archive.extractall(root, filter="data")
    sys.path.insert(0, str(root))
    package = json.loads((root / "manifest.json").read_text())["package"]
    config = importlib.import_module(f"{package}.config").load(root / "mlops.yaml")
    model_lib = importlib.import_module(f"{package}.model")
    pipeline, meta = model_lib.load(Path(model.path))
    frame = pd.read_parquet(test_data.path)
    values = model_lib.compute_metrics(
        pipeline, meta, frame.drop(columns=[config.data.target]), frame[config.data.target]
    )
    for name, value in values.items():
        metrics.log_metric(name, value)
    return namedtuple("Outputs", ["value", "metrics_json"])(values[config.gate.metric], json.dumps(values))


def upload(
    source: Input[Artifact], model: Input[Model], metrics_json: str, git_commit: str, approved: bool,
    model_image: str, vertex_model: Output[Artifact],
):
    import importlib
    import json
    import os
    import sys
    import tarfile
    import tempfile
    from pathlib import Path

    root = Path(tempfile.mkdtemp())
    with tarfile.open(source.path) as archive:
        archive.extractall(root, filter="data")
    sys.path.insert(0, str(root))
    package = json.loads((root / "manifest.json").read_text())["package"]
    config = importlib.import_module(f"{package}.config").load(root / "mlops.yaml")
    target = importlib.import_module(f"{package}.targets.gcp.target").TARGET(config, root)
    if model_image:  # serving.mode image: the image the build pushed, registered with the version
        os.environ["MODEL_IMAGE"] = model_image
    lineage = {"git_commit": git_commit, "trained_on": "vertex-pipelines", "model_artifact": model.uri}
    version = target.register(Path(model.path), json.loads(metrics_json), lineage, approved=approved)
    vertex_model.uri = f"https://{config.gcp.region}-aiplatform.googleapis.com/v1/{version.uri}"
    vertex_model.metadata["resourceName"] = version.uri
    vertex_model.metadata["version"] = version.version


def requirements(root: Path, extras: tuple[str, ...] = ()) -> list[str]:
    """The pinned requirements of this repository, for the components' images: from pyproject.toml
    next to mlops.yaml or in the checkout this package sits in, else from the installed package's
    metadata (a CI step runs the installed package, possibly from another folder)."""
    package = __package__.split(".")[0]
    for candidate in (root / "pyproject.toml", Path(__file__).resolve().parents[4] / "pyproject.toml"):
        if candidate.is_file():
            project = tomllib.loads(candidate.read_text())["project"]
            optional = project.get("optional-dependencies", {})
            return list(project["dependencies"]) + [r for e in extras for r in optional.get(e, [])]
    distributions = metadata.packages_distributions().get(package)
    if not distributions:
        raise ConfigError(f"pipeline: pyproject.toml not found in {root} and {package} is not installed")
    found = []
    for line in metadata.requires(distributions[0]) or []:
        requirement, _, marker = line.partition(";")
        wanted = re.search(r"""extra\s*==\s*['"]([^'"]+)['"]""", marker)
        if wanted is None or wanted.group(1) in extras:
            found.append(requirement.strip())
    return found


def build(config: Config, root: Path):
    """The pipeline function for this repository's mlops.yaml."""
    component = partial(dsl.component, base_image=config.gcp.component_image)
    base, cloud = requirements(root), requirements(root, ("gcp",))
    prepare_op = component(prepare, packages_to_install=base)
    train_op = component(train, packages_to_install=base)
    evaluate_op = component(evaluate, packages_to_install=base)
    upload_op = component(upload, packages_to_install=cloud)
    gate = config.gate

    @dsl.pipeline(
        name=config.model.name,
        description=f"{config.project}: prepare, train, evaluate, gate on {gate.metric}, upload",
        pipeline_root=config.gcp.root,
    )
    def pipeline(source_uri: str, git_commit: str = "unknown", approved: bool = False, model_image: str = ""):
        source = dsl.importer(artifact_uri=source_uri, artifact_class=Artifact, reimport=False)
        source.set_display_name("source")
        prepared = prepare_op(source=source.output)
        trained = train_op(source=source.output, train_data=prepared.outputs["train_data"])
        evaluated = evaluate_op(
            source=source.output, model=trained.outputs["model"], test_data=prepared.outputs["test_data"]
        )
        value = evaluated.outputs["value"]
        passed = value <= gate.threshold if gate.lower_is_better else value >= gate.threshold
        with dsl.If(passed, name=f"gate-{gate.metric}"):
            upload_op(
                source=source.output, model=trained.outputs["model"],
                metrics_json=evaluated.outputs["metrics_json"], git_commit=git_commit, approved=approved,
                model_image=model_image,
            ).set_caching_options(False)

    return pipeline


def compile_to(config: Config, root: Path, path: Path) -> Path:
    """Compile the pipeline to a KFP IR YAML file (offline; no Google Cloud call)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build(config, root), package_path=str(path))
    return path
