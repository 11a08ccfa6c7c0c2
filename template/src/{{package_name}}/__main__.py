"""`python -m <package> STAGE [--target T] [--env E]`: the one entry point of CI files and Makefile.

Exit codes: 0 ok, 1 the stage ran and said no (gate, smoke), 2 bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from . import config as config_lib
from . import stages
from .errors import ConfigError, StageFailed
from .targets import AVAILABLE, get_target

STAGES = ("train", "evaluate", "gate", "register", "deploy", "smoke", "promote", "rollback", "serve",
          "pipeline", "undeploy", "monitor", "batch", "import-model")
# The stages of a run that `train --if-new-data` ended: they say so and exit 0.
AFTER_TRAIN = ("evaluate", "gate", "register", "deploy", "smoke", "promote")


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=f"python -m {__package__}", description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=STAGES)
    parser.add_argument("--target", default="local", help=f"one of: {', '.join(AVAILABLE)}")
    parser.add_argument("--env", default="staging", help="environment from mlops.yaml (default: staging)")
    parser.add_argument("--config", default="mlops.yaml", type=Path)
    parser.add_argument("--version", dest="model_version",
                        help="promote/deploy/batch: this version (promote default: staging's; batch: --env's)")
    parser.add_argument("--to", default="prod", help="promote: the environment to promote to")
    parser.add_argument("--release", metavar="RECORD",
                        help="promote/deploy: exactly the version a smoke test passed, from its record "
                             "(artifacts/smoked-staging.json, or where smoke --record wrote it)")
    parser.add_argument("--record", metavar="PATH_OR_URI",
                        help="smoke: also write the release record here (e.g. gs://bucket/releases/COMMIT.json)")
    parser.add_argument("--model-dir", type=Path,
                        help="serve: the bundle (default: where the platform mounts it, see model_dir(); "
                             "else artifacts/model)")
    parser.add_argument("--host", help="serve: address to bind (default: $SERVE_HOST, else 127.0.0.1)")
    parser.add_argument("--port", type=int, help="serve: port (default: $AIP_HTTP_PORT, else 8080)")
    parser.add_argument("--state-file", type=Path, help="serve: exit when this deployment record is replaced")
    parser.add_argument("--health-port", type=int, help="serve: also listen here (a port of this server alone)")
    for flag, kind, what in (("--max-body-mb", float, "largest request body"), ("--max-rows", int, "rows per request"),
                             ("--max-in-flight", int, "requests served at once (503 beyond)"),
                             ("--max-batch-size", int, "rows per predict call; 1 turns batching off"),
                             ("--max-batch-wait-ms", float, "longest wait to fill a batch")):
        parser.add_argument(flag, type=kind, help=f"serve: {what} (default: mlops.yaml serving:)")
    parser.add_argument("--if-new-data", action="store_true",
                        help="train: only when the data differs from the champion's (scheduled and triggered "
                             "runs); otherwise say 'no new data' and let the run's later stages skip")
    parser.add_argument("--input", metavar="PATH_OR_URI",
                        help="batch: the file or folder of rows to score (CSV, Parquet, JSON lines); monitor: "
                             "judge this file of rows instead of captured traffic")
    parser.add_argument("--output", metavar="PATH_OR_URI", help="batch: where the scores go (.csv, .parquet, .jsonl)")
    parser.add_argument("--from", dest="source", metavar="PATH_OR_URI",
                        help="import-model: a joblib file of a fitted scikit-learn model, or a model bundle folder")
    for flag, what in (("--capture-dir", "append captured requests (JSON lines) here"),
                       ("--capture-percent", "share of requests captured (default 100 with --capture-dir)"),
                       ("--capture-max-mb", "disk the capture may use (default: mlops.yaml monitoring:)")):
        parser.add_argument(flag, type=Path if flag == "--capture-dir" else float, help=f"serve: {what}")
    parser.add_argument("--allow-schema-change", action="store_true",
                        help="deploy: accept a model whose input schema differs from the one serving")
    parser.add_argument("--print-definition", action="store_true",
                        help="pipeline: print the managed pipeline definition of --target and exit")
    return parser.parse_args(argv)


def _report(stage: str, result: dict, seconds: float) -> None:
    print(f"{stage}: ok in {seconds:.2f}s {json.dumps(result, default=str)}", flush=True)


def run_pipeline(config, target, root: Path, env: str) -> None:
    timings = []
    for stage in stages.PIPELINE:
        started = time.perf_counter()
        try:
            result = stages.run_stage(stage, config, target, root, env)
        finally:
            timings.append((stage, time.perf_counter() - started))
        _report(stage, result, timings[-1][1])
    print("\nstage       seconds")
    for stage, seconds in timings:
        print(f"{stage:<11} {seconds:7.2f}")
    print(f"{'total':<11} {sum(s for _, s in timings):7.2f}")


def _limits(args: argparse.Namespace):
    """The server's bounds: mlops.yaml `serving:` when there is one, then the flags."""
    from dataclasses import fields

    from .serving import Limits

    values = {}
    if args.config.exists():  # only its serving: section, so a server (an image) needs no data or cloud config
        import yaml

        try:
            raw = config_lib.read_yaml(args.config.read_text(encoding="utf-8"))
            section = raw.get("serving") if isinstance(raw, dict) else None
            values = config_lib.Serving.model_validate(section or {}).model_dump()
        except yaml.YAMLError as exc:
            raise ConfigError(f"{args.config}: not valid YAML: {exc}") from None
        except config_lib.ValidationError as exc:
            raise ConfigError(config_lib.format_errors(f"{args.config.name}: serving", exc)) from None
    for field in fields(Limits):
        flag = getattr(args, field.name, None)
        if flag is not None:
            values[field.name] = flag
    return Limits(**{k: v for k, v in values.items() if k in {f.name for f in fields(Limits)}})


def _capture(args: argparse.Namespace):
    """serve --capture-dir: the request recorder (sampling and disk budget from flags or mlops.yaml)."""
    if args.capture_dir is None:
        return None
    from .monitoring.capture import CaptureWriter

    monitoring = config_lib.load(args.config, deep=False).monitoring if args.config.exists() else None
    max_mb = args.capture_max_mb or (monitoring.capture_max_mb if monitoring else 256)
    percent = 100 if args.capture_percent is None else args.capture_percent
    return CaptureWriter(args.capture_dir, percent, max_mb, os.environ.get("MODEL_VERSION", "unknown"))


# Where each platform puts the model of a custom serving container, in the order `serve` looks:
# Vertex AI (the Model's artifact URI: a gs:// URI, copied here with fsspec, or a path), Azure ML (the
# deployment's model, in a folder of its own name below it), then MODEL_DIR (the image's: SageMaker
# mounts ModelDataUrl at /opt/ml/model, and a model baked into the image is there too).
MODEL_DIR_VARIABLES = ("AIP_STORAGE_URI", "AZUREML_MODEL_DIR", "MODEL_DIR")


def model_dir(given: Path | None) -> tuple[Path, str]:
    """The bundle `serve` loads and what named it: --model-dir, else the first platform variable that is
    set, else artifacts/model. A folder holding the bundle one level down (Azure ML's <model>/) is
    looked into."""
    if given is not None:
        return given, "--model-dir"
    for name in MODEL_DIR_VARIABLES:
        value = os.environ.get(name)
        if not value:
            continue
        if "://" in value:
            value = _copy_model(value, name)
        folder = Path(value)
        if not (folder / "model.joblib").exists() and folder.is_dir():
            inner = sorted(p.parent for p in folder.glob("*/model.joblib"))
            folder = inner[0] if len(inner) == 1 else folder
        return folder, f"${name}"
    return Path("artifacts/model"), "--model-dir"


def _copy_model(uri: str, name: str) -> str:
    """A model at a URI (Vertex AI's AIP_STORAGE_URI is gs://...), copied into a temporary folder."""
    import tempfile

    try:
        import fsspec

        dest = tempfile.mkdtemp(prefix="model-")
        fs, path = fsspec.core.url_to_fs(uri)
        fs.get(path.rstrip("/") + "/", dest + "/", recursive=True)
    except (ImportError, ValueError) as exc:  # fsspec knows no such protocol (e.g. gcsfs is not installed)
        raise ConfigError(f"${name}: cannot read {uri} ({exc}); install the extra of its cloud into the "
                          "image (docker build --build-arg EXTRAS=...) or bake the model in") from None
    except OSError as exc:
        raise ConfigError(f"${name}: cannot copy the model from {uri}: {exc}") from None
    return dest


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    root = Path.cwd()
    try:
        if args.stage == "serve":
            from .serving import serve

            bundle, source = model_dir(args.model_dir)
            if not (bundle / "model.joblib").exists():
                raise ConfigError(f"{source}: {bundle}/model.joblib not found; run `train` first")
            host = args.host or os.environ.get("SERVE_HOST") or "127.0.0.1"
            port = args.port or os.environ.get("AIP_HTTP_PORT") or 8080
            if not str(port).isdigit():
                raise ConfigError(f"$AIP_HTTP_PORT: '{port}' is not a port number")
            port = int(port)
            serve(bundle, host, port, args.state_file, args.health_port, _limits(args), _capture(args))
            if argv is None:  # the server process: drained, its capture written, its pools shut down
                # Finalizing the interpreter (freeing scikit-learn's, SciPy's and pandas' modules) took
                # another second, which every blue/green switch and undeploy waited for: skip it.
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(0)
            return 0
        # Only the stages that build the model or call a cloud pay for the checks that import
        # scikit-learn or botocore's service models.
        config = config_lib.load(args.config, deep=args.stage in ("train", "evaluate", "pipeline", "import-model")
                                 or args.target != "local")
        target = get_target(args.target, config, root)
        started = time.perf_counter()
        if args.stage == "pipeline":
            if args.print_definition:
                print(json.dumps(target.pipeline_definition(), indent=2))
            else:
                run_pipeline(config, target, root, args.env)
            return 0
        skipped = stages.skipped_for_no_new_data(root) if args.stage in AFTER_TRAIN else None
        if skipped is not None:
            print(f"{args.stage}: skipped: no new data since champion version {skipped['champion']} "
                  f"({stages.ARTIFACTS / stages.NO_NEW_DATA}); nothing to do", flush=True)
            return 0
        version = args.model_version
        if args.release:
            if version:
                raise ConfigError("--release and --version name the version twice; give one")
            version = str(stages.read_release(args.release)["version"])
        if args.stage == "promote":
            result = stages.promote(config, target, root, version, args.to)
        elif args.stage == "deploy":
            result = stages.deploy(config, target, root, args.env, args.allow_schema_change, version)
        elif args.stage == "smoke":
            result = stages.smoke(config, target, root, args.env, args.record)
        elif args.stage == "train":
            result = stages.train(config, target, root, args.if_new_data)
        elif args.stage == "monitor":
            result = stages.monitor(config, target, root, args.env, args.input)
        elif args.stage == "batch":
            if not (args.input or config.batch.input) or not (args.output or config.batch.output):
                raise ConfigError("batch: give --input and --output (or batch.input and batch.output in mlops.yaml)")
            result = stages.batch(config, target, root, args.env, args.input or config.batch.input,
                                  args.output or config.batch.output, version)
        elif args.stage == "import-model":
            if not args.source:
                raise ConfigError("import-model: give --from PATH_OR_URI")
            result = stages.import_model(config, target, root, args.source)
        elif args.stage == "undeploy":
            target.undeploy(args.env)
            result = {"env": args.env}
        else:
            result = stages.run_stage(args.stage, config, target, root, args.env)
        _report(args.stage, result, time.perf_counter() - started)
        return 0
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except StageFailed as exc:
        print(f"{args.stage} failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
