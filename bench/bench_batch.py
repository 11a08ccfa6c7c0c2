"""Local batch scoring over a large input (CSV and Parquet), against the naive path in the same run:
`pandas.read_csv` (or `read_parquet`) of the whole file + `predict` + `to_csv`/`to_parquet`.
Targets: peak memory <= 1 GiB whatever the input's size; throughput at least the naive path's.

    .venv/bin/python bench/bench_batch.py [--rows 5000000] [--formats csv,parquet]

Renders the default repository (30 numeric features), trains and registers its model, writes the
input once per format, then runs each path as its own process (peak RSS from wait4), A B A B.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.helpers import project_python, render  # noqa: E402

MAKE_INPUT = r'''
import sys
import numpy as np, pandas as pd
from sklearn.datasets import load_breast_cancer
rows, path = int(sys.argv[1]), sys.argv[2]
X = load_breast_cancer(as_frame=True).frame.drop(columns="target")
rng = np.random.default_rng(0)
for start in range(0, rows, 500_000):
    part = X.sample(min(500_000, rows - start), replace=True, random_state=start).reset_index(drop=True)
    part.insert(0, "id", np.arange(start, start + len(part)))
    if path.endswith(".csv"):
        part.to_csv(path, mode="a", header=start == 0, index=False)
    else:
        import pyarrow as pa, pyarrow.parquet as pq
        table = pa.Table.from_pandas(part, preserve_index=False)
        writer = globals().get("writer") or pq.ParquetWriter(path, table.schema)
        globals()["writer"] = writer
        writer.write_table(table)
if "writer" in globals():
    writer.close()
'''

NAIVE = r'''
import sys, joblib, json, pandas as pd
model_dir, source, out = sys.argv[1:4]
pipeline = joblib.load(f"{model_dir}/model.joblib")
names = json.load(open(f"{model_dir}/model.json"))["features"]
frame = pd.read_csv(source) if source.endswith(".csv") else pd.read_parquet(source)
frame = frame.assign(prediction=pipeline.predict(frame[names]))[["id", "prediction"]]
frame.to_csv(out, index=False) if out.endswith(".csv") else frame.to_parquet(out)
'''


def measured(argv: list[str], cwd: Path, env: dict) -> tuple[float, float]:
    started = time.perf_counter()
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode not in (0,):
        raise SystemExit(f"{argv[:4]} exited {proc.returncode}")
    return time.perf_counter() - started, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--formats", default="csv,parquet")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo", clouds=["gcp"])
        python = str(project_python(repo, ["local", "dev"], label="project"))
        env = {**os.environ, "PYTHONPATH": str(repo / "src")}
        package = next(p.name for p in (repo / "src").iterdir() if (p / "__main__.py").exists())
        for stage in ("train", "evaluate", "gate", "register"):
            subprocess.run([python, "-m", package, stage], cwd=repo, env=env, check=True, stdout=subprocess.DEVNULL)
        config = (repo / "mlops.yaml").read_text().replace("  id_columns: null ", "  id_columns: [id] ")
        (repo / "mlops.yaml").write_text(config)
        model_dir = repo / ".mlops" / "registry" / "my-ml-project" / "versions" / "1" / "model"
        print(f"{args.rows:,} rows x 30 features; load {os.getloadavg()[0]:.2f}", flush=True)
        for kind in args.formats.split(","):
            source = Path(tmp) / f"input.{kind}"
            subprocess.run([python, "-c", MAKE_INPUT, str(args.rows), str(source)], check=True)
            print(f"{kind}: input {source.stat().st_size / 2**20:.0f} MiB", flush=True)
            results: dict[str, list[tuple[float, float]]] = {"batch": [], "naive": []}
            for _ in range(args.rounds):
                out = Path(tmp) / f"out.{kind}"
                results["batch"].append(measured([python, "-m", package, "batch", "--version", "1", "--input",
                                                  str(source), "--output", str(out)], repo, env))
                results["naive"].append(measured([python, "-c", NAIVE, str(model_dir), str(source), str(out)],
                                                 repo, env))
            for name, runs in results.items():
                seconds = statistics.median(s for s, _ in runs)
                print(f"  {name:5}: median {seconds:6.1f} s = {args.rows / seconds:9,.0f} rows/s, "
                      f"peak {max(m for _, m in runs):6.0f} MiB", flush=True)
            source.unlink()


if __name__ == "__main__":
    main()
