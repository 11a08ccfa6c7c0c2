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
    parser.add_argument("--model-dir", type=Path, default=Path("artifacts/model"), help="serve: the bundle")
    parser.add_argument("--host", default="127.0.0.1", help="serve: address to bind")
    parser.add_argument("--port", type=int, default=8080, help="serve: port")
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

    values = config_lib.load(args.config).serving.model_dump() if args.config.exists() else {}
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


def main(argv: list[str] | None = None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    root = Path.cwd()
    try:
        if args.stage == "serve":
            from .serving import serve

            if not (args.model_dir / "model.joblib").exists():
                raise ConfigError(f"--model-dir: {args.model_dir}/model.joblib not found; run `train` first")
            serve(args.model_dir, args.host, args.port, args.state_file, args.health_port, _limits(args),
                  _capture(args))
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
            result = stages.monitor(config, target, root, args.env, Path(args.input) if args.input else None)
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
