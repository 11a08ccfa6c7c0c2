"""`mlops-gen examples`: re-render ci-examples/ (each cloud's CI and infra files for default answers).

The folder lets reviewers read what the template produces without running copier, and a test
fails when it is stale, so a template change always shows up in the diff of its CI files.
"""

from __future__ import annotations

import filecmp
import shutil
import sys
import tempfile
from pathlib import Path

import click

from mlops_gen import CHECKOUT_ROOT
from mlops_gen.render import render

# What belongs to each cloud in a rendered repository.
CLOUD_FILES = {
    "aws": ["buildspec.yml", "buildspec-prod.yml", "infra/aws/**/*"],
    "azure": ["azure-pipelines.yml", "infra/azure/**/*", ".amlignore"],
    "gcp": ["cloudbuild.yaml", "cloudbuild.prod.yaml", "infra/gcp/**/*"],
}


def build(out: Path) -> Path:
    """Render default answers and lay each cloud's files out under out/<cloud>/."""
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo")
        for cloud, patterns in CLOUD_FILES.items():
            for pattern in patterns:
                for path in sorted(repo.glob(pattern)):
                    if path.is_file():
                        target = out / cloud / path.relative_to(repo)
                        target.parent.mkdir(parents=True, exist_ok=True)
                        shutil.copyfile(path, target)
    return out


def differences(left: Path, right: Path) -> list[str]:
    """Relative paths that differ, or exist on one side only."""
    def files(root: Path) -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()} if root.exists() else set()

    a, b = files(left), files(right)
    changed = {f for f in a & b if not filecmp.cmp(left / f, right / f, shallow=False)}
    return sorted((a ^ b) | changed)


@click.command()
@click.option("--check", is_flag=True, help="Change nothing; exit 1 when ci-examples/ is stale.")
@click.option("--out", type=click.Path(path_type=Path), default=(CHECKOUT_ROOT or Path()) / "ci-examples",
              show_default="ci-examples/ of the checkout, or of the current folder for an installed tool")
def examples(check: bool, out: Path) -> None:
    """Re-render ci-examples/ from default answers, one folder per cloud."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = build(Path(tmp) / "ci-examples")
        stale = differences(fresh, out)
        if check:
            for path in stale:
                click.echo(f"stale: {out / path}", err=True)
            sys.exit(1 if stale else 0)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(fresh, out) if fresh.exists() else out.mkdir(parents=True)
    click.echo(f"{out}: {len(stale)} file(s) changed")
