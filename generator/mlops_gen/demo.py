"""`mlops-gen demo DEST` (what `make demo` runs): generate a project with default answers, install
it, run its whole local pipeline, and show metrics, the endpoint, a real prediction and stage times."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import click

from mlops_gen.render import render


def _run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    click.secho(f"$ {' '.join(command)}", fg="cyan")
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env)
    if result.returncode != 0:
        click.secho(f"demo: `{' '.join(command)}` failed with exit {result.returncode}", fg="red", err=True)
        sys.exit(result.returncode)
    return time.perf_counter() - started


@click.command()
@click.argument("dest", type=click.Path(path_type=Path), default=Path("build/demo"))
@click.option("--ci/--no-ci", "with_ci", default=True, help="Also run each cloud's CI file locally (mlops-gen ci run).")
def demo(dest: Path, with_ci: bool) -> None:
    """Generate DEST with default answers and run its pipeline on the local target."""
    if dest.exists():
        shutil.rmtree(dest)  # its local servers see their deployment records vanish and exit
    click.secho(f"Generating {dest} with default answers", bold=True)
    render(dest)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    timings = {"install": _run(["make", "install", "EXTRAS=local,dev"], dest, env)}
    timings["pipeline"] = _run(["make", "pipeline"], dest, env)

    artifacts = dest / "artifacts"
    metrics = json.loads((artifacts / "metrics.json").read_text())
    deployment = json.loads((dest / ".mlops" / "deployments" / "staging.json").read_text())
    row = json.loads((artifacts / "sample.json").read_text())["instances"][:1]
    request = urllib.request.Request(
        deployment["url"] + "/invocations", data=json.dumps({"instances": row}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        prediction = json.loads(response.read())["predictions"][0]

    if with_ci:
        for ci_file, provider in (("buildspec.yml", "aws"), ("azure-pipelines.yml", "azure"), ("cloudbuild.yaml", "gcp")):
            if (dest / ci_file).exists():
                timings[f"ci run {provider}"] = _run(
                    [sys.executable, "-m", "mlops_gen", "ci", "run", "--provider", provider, "--repo", str(dest)],
                    dest, env,
                )

    click.secho("\nDemo finished", bold=True)
    click.echo("metrics:   " + ", ".join(f"{k}={v:.4f}" for k, v in metrics.items()))
    click.echo(f"endpoint:  {deployment['url']} (model version {deployment['version']}, staging)")
    click.echo(f"predict:   POST {deployment['url']}/invocations {json.dumps({'instances': row})[:80]}...")
    click.echo(f"           -> {prediction!r}")
    click.echo("seconds:   " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    click.echo(f"(the stage table above has each stage's time; stop the server with `make -C {dest} clean`)")
