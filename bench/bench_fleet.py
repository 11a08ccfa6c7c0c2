"""Benchmark: `mlops-gen fleet update --jobs 2` over N generated repositories, against a
sequential loop of `copier update --defaults` (one subprocess per repository, as a user would),
side by side on copies of the same fleet, with the same resulting trees asserted.

    .venv/bin/python bench/bench_fleet.py [--repos 100] [--runs 3] [--copier-runs 1] [--out FILE]

The template is this repository's `copier.yml` + `template/` copied into a git repository and
tagged v1.0.0; a realistic change (a CI variable, a model default in mlops.yaml, a Python
function, a new file) is tagged v2.0.0. Each repository is generated from v1.0.0 with its own
answers, then gets a few user edits (README, mlops.yaml, the Azure pipeline, model.py, a deleted
test), some of them next to the template's change, and is committed.

Trees: `fleet update --no-yaml-merge` must equal copier's trees byte for byte; the default run
(YAML merge on) must equal them everywhere except the files where it avoided copier's textual
conflict, which are counted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fleet.helpers import tree  # noqa: E402  (the tests' tree comparison, same bytes and modes)

BIN = Path(sys.executable).parent
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "Bench", "GIT_AUTHOR_EMAIL": "b@example.com",
           "GIT_COMMITTER_NAME": "Bench", "GIT_COMMITTER_EMAIL": "b@example.com"}
AZURE = "azure-pipelines.yml.jinja"


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env=GIT_ENV)


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def make_template(root: Path) -> Path:
    tpl = root / "template-repo"
    shutil.copytree(REPO / "template", tpl / "template")
    shutil.copy(REPO / "copier.yml", tpl / "copier.yml")
    git(tpl, "init", "-q", "-b", "main")
    commit(tpl, "v1")
    git(tpl, "tag", "v1.0.0")
    t = tpl / "template"
    # v2: a CI variable, a model default, a Python helper, a new file
    replace(t / AZURE, "  PIP_CACHE_DIR: $(Pipeline.Workspace)/.pip\n",
            "  PIP_CACHE_DIR: $(Pipeline.Workspace)/.pip\n  PYTHONUNBUFFERED: '1'\n")
    replace(t / "mlops.yaml.jinja", "    n_estimators: 100\n", "    n_estimators: 200\n")
    model = t / "src/{{package_name}}/model.py"
    model.write_text(model.read_text() + "\n\ndef describe() -> str:\n    return 'template v2 model'\n")
    (t / "CHANGELOG.md.jinja").write_text("# Changelog of {{ project_name }}\n\n## template v2.0.0\n")
    commit(tpl, "v2")
    git(tpl, "tag", "v2.0.0")
    return tpl


def make_fleet(root: Path, tpl: Path, count: int) -> Path:
    import copier

    fleet = root / "fleet"
    for i in range(count):
        repo = fleet / f"repo-{i:03d}"
        copier.run_copy(str(tpl), str(repo), data={"project_name": f"Fleet Project {i}"}, defaults=True,
                        quiet=True, vcs_ref="v1.0.0")
        git(repo, "init", "-q", "-b", "main")
        commit(repo, "generated")
        (repo / "README.md").write_text((repo / "README.md").read_text() + f"\nOwned by team {i % 7}.\n")
        # next to the template's n_estimators change: a textual conflict for copier
        replace(repo / "mlops.yaml", "    max_depth: 8\n", f"    max_depth: {6 + i % 4}\n")
        pipeline = repo / "azure-pipelines.yml"
        if i % 3 == 0:      # a variable added where the template adds one
            replace(pipeline, "  PIP_CACHE_DIR: $(Pipeline.Workspace)/.pip\n",
                    "  PIP_CACHE_DIR: $(Pipeline.Workspace)/.pip\n  teamChannel: '#ml-team'\n")
        elif i % 3 == 1:    # far from the template's change
            replace(pipeline, "vmImage: ubuntu-24.04", "vmImage: ubuntu-22.04")
        package = next((repo / "src").iterdir())
        if i % 5 == 0:      # the same place as the template: a real conflict
            model = package / "model.py"
            model.write_text(model.read_text() + "\n\ndef describe() -> str:\n    return 'our model'\n")
        if i % 7 == 0:
            tests = sorted((repo / "tests").glob("test_*.py"))
            if tests:
                tests[-1].unlink()
        commit(repo, "team edits")
    return fleet




def has_markers(data: bytes) -> bool:
    return any(line.rstrip() in (b"<<<<<<< before updating", b">>>>>>> after updating")
               for line in data.splitlines())


def run_fleet(fleet: Path, report: Path, *extra: str) -> tuple[float, dict]:
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "mlops-gen"), "fleet", "update", str(fleet), "--jobs", "2",
                           "--report", str(report), *extra], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"fleet update failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, json.loads(report.read_text())


def run_copier(fleet: Path) -> float:
    start = time.perf_counter()
    for repo in sorted(p for p in fleet.iterdir() if p.is_dir()):
        subprocess.run([str(BIN / "copier"), "update", "--defaults", "--conflict", "inline",
                        "--vcs-ref", "v2.0.0", "--quiet"], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repos", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3, help="timed runs of fleet update")
    parser.add_argument("--copier-runs", type=int, default=1, help="timed runs of the copier loop")
    parser.add_argument("--out", type=Path, help="write the Markdown result here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as tmp:
        root = Path(tmp)
        tpl = make_template(root)
        t0 = time.perf_counter()
        pristine = make_fleet(root, tpl, args.repos)
        print(f"generated {args.repos} repositories in {time.perf_counter() - t0:.1f} s", file=sys.stderr)

        copier_times, copier_fleet = [], None
        for run in range(args.copier_runs):
            copier_fleet = Path(shutil.copytree(pristine, root / f"copier-{run}", symlinks=True))
            copier_times.append(run_copier(copier_fleet))
            print(f"copier loop run {run + 1}: {copier_times[-1]:.1f} s", file=sys.stderr)

        fleet_times, report = [], {}
        for run in range(args.runs):
            ours = Path(shutil.copytree(pristine, root / f"fleet-{run}", symlinks=True))
            seconds, report = run_fleet(ours, root / f"report-{run}.json")
            fleet_times.append(seconds)
            print(f"fleet update run {run + 1}: {seconds:.2f} s", file=sys.stderr)
        plain = Path(shutil.copytree(pristine, root / "fleet-plain", symlinks=True))
        run_fleet(plain, root / "report-plain.json", "--no-yaml-merge")

        # same trees: byte for byte without the YAML merge; with it, except the files it merged
        yaml_merged = {(Path(r["path"]).name, p) for r in report["repos"] for u in r["units"]
                       for p in u["yaml_merged"]}
        copier_conflicts = ours_conflicts = 0
        for repo in sorted(p.name for p in pristine.iterdir()):
            expected = tree(copier_fleet / repo)
            assert tree(plain / repo) == expected, f"{repo}: --no-yaml-merge differs from copier"
            got = tree(ours / repo)
            assert set(got) == set(expected), repo
            for path, entry in expected.items():
                copier_conflicts += has_markers(entry[0])
                ours_conflicts += has_markers(got[path][0])
                if (repo, path) not in yaml_merged:
                    assert got[path] == entry, f"{repo}/{path} differs from copier"
                else:
                    assert has_markers(entry[0]) and not has_markers(got[path][0])

    copier_median, fleet_median = statistics.median(copier_times), statistics.median(fleet_times)
    ratio = copier_median / fleet_median
    machine = f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores (shared), Python " \
              f"{platform.python_version()}"
    lines = [
        "# Benchmark: mlops-gen fleet update",
        "",
        (f"{args.repos} repositories generated from this repository's template at v1.0.0, each with user "
        "edits, updated to v2.0.0 (a CI variable, a model default, a Python helper, a new file)."),
        "",
        f"- Machine: {machine}",
        (f"- Command: `mlops-gen fleet update FLEET --jobs 2` (median of {args.runs} runs: "
        f"{', '.join(f'{t:.1f}' for t in fleet_times)} s)"),
        (f"- Baseline: `for repo in FLEET/*; do (cd $repo && copier update --defaults --conflict inline "
        f"--vcs-ref v2.0.0 --quiet); done` ({args.copier_runs} run(s): "
        f"{', '.join(f'{t:.1f}' for t in copier_times)} s)"),
        ("- Trees: `fleet update --no-yaml-merge` equals copier's trees byte for byte in every repository; "
        "the default run equals them except in the files where the YAML merge replaced copier's conflict "
        "markers by a merge"),
        "",
        "| | total | per repository |",
        "|---|---|---|",
        f"| copier update loop | {copier_median:.1f} s | {copier_median / args.repos * 1000:.0f} ms |",
        f"| mlops-gen fleet update --jobs 2 | {fleet_median:.1f} s | {fleet_median / args.repos * 1000:.0f} ms |",
        f"| **speed-up** | **{ratio:.1f}×** | |",
        "",
        "Conflicts (files left with conflict markers) on the same fleet:",
        "",
        f"- plain copier (= `fleet update --no-yaml-merge`): {copier_conflicts}",
        (f"- `fleet update` with the structure-aware YAML merge: {ours_conflicts} "
        f"({len(yaml_merged)} conflicts avoided, all in YAML files: mlops.yaml and azure-pipelines.yml; "
        "the rest are real same-place edits in model.py)"),
        "",
        f"Reproduce: `.venv/bin/python bench/bench_fleet.py --repos {args.repos} --runs {args.runs}`",
    ]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
