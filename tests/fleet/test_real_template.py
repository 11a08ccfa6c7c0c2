"""This repository's own template, v1 -> v2 (the benchmark's change), on two generated repos:
`fleet update --no-yaml-merge` gives copier's trees; the default differs only where the YAML
merge replaced copier's conflict markers."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from click.testing import CliRunner

from mlops_gen.fleet.command import fleet as fleet_cli
from mlops_gen.fleet.merge import has_markers
from tests.fleet.helpers import copier_update, tree

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_fleet.py"


def _bench():
    spec = importlib.util.spec_from_file_location("bench_fleet", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_real_template_matches_copier(tmp_path: Path) -> None:
    bench = _bench()
    tpl = bench.make_template(tmp_path)
    pristine = bench.make_fleet(tmp_path, tpl, 2)
    ours, plain, ref = (Path(shutil.copytree(pristine, tmp_path / n, symlinks=True)) for n in ("ours", "plain", "ref"))
    assert CliRunner().invoke(fleet_cli, ["update", str(ours), "-j", "1"]).exit_code == 0
    assert CliRunner().invoke(fleet_cli, ["update", str(plain), "-j", "1", "--no-yaml-merge"]).exit_code == 0
    merged = 0
    for repo in sorted(p.name for p in pristine.iterdir()):
        copier_update(ref / repo)
        expected = tree(ref / repo)
        assert tree(plain / repo) == expected, repo
        got = tree(ours / repo)
        assert set(got) == set(expected)
        for path, entry in expected.items():
            if got[path] != entry:
                assert path.endswith((".yml", ".yaml")) and has_markers(entry[0]), path
                assert not has_markers(got[path][0])
                merged += 1
        assert (ours / repo / "CHANGELOG.md").exists()
    assert merged >= 2          # mlops.yaml in both repositories, the pipeline in repo-000
