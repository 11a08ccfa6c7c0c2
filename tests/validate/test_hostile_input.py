"""Junk and hostile input end quickly, with an exit code and a message, never a traceback.

Each case runs the installed command as a user would, in its own process, so a hang, a memory
blow-up or a traceback shows as it would on a terminal. The time bound is generous (the failures
this guards against took 60-110 s and gigabytes); the real figure is in BENCHMARKS.md."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HEAD = "version: 0.2\nenv:\n  shell: bash\n"


def _billion_laughs(levels: int = 9) -> str:
    lines = [HEAD.rstrip("\n"), "x-0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"x-{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels)]
    return "\n".join(lines) + f"\nphases:\n  build:\n    commands: *a{levels - 1}\n"


def _run(*args: str) -> tuple[subprocess.CompletedProcess, float]:
    start = time.monotonic()
    run = subprocess.run([sys.executable, "-m", "mlops_gen", "validate", *args], capture_output=True, text=True,
                         timeout=60, stdin=subprocess.DEVNULL)
    return run, time.monotonic() - start


def _assert_clean_exit(run: subprocess.CompletedProcess, seconds: float, code: int, *needles: str) -> None:
    assert "Traceback" not in run.stderr + run.stdout, run.stderr
    assert run.returncode == code, run.stdout + run.stderr
    for needle in needles:
        assert needle in run.stdout + run.stderr, run.stdout + run.stderr
    assert seconds < 5, f"took {seconds:.1f} s"


@pytest.mark.parametrize(("name", "text", "code", "needles"), [
    ("alias-bomb", _billion_laughs(), 1, [":9:11: yaml-too-complex: the alias *a4", "100,000 nodes"]),
    ("deep-flow", HEAD + "phases: " + "[" * 10_000 + "]" * 10_000 + "\n", 1,
     [":4:", "yaml-too-complex", "nested deeper than 200"]),
    ("deep-block", HEAD + "phases:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)), 1,
     ["yaml-too-complex", "deeper than 200"]),
    ("nul-byte", HEAD + "phases:\n  build:\n    commands:\n      - echo \x00 hi\n", 1,
     [":7:14: yaml-syntax: the character NUL is not allowed"]),
    ("c1-control", HEAD + "phases:\n  build:\n    commands:\n      - echo \x9b hi\n", 1,
     [":7:14: yaml-syntax: the character U+009B"]),
], ids=lambda v: v if isinstance(v, str) and v.isidentifier() else None)
def test_hostile_text_is_refused_quickly(tmp_path: Path, name, text, code, needles):
    path = tmp_path / f"{name}-buildspec.yml"
    path.write_text(text, encoding="utf-8")
    run, seconds = _run(str(path))
    _assert_clean_exit(run, seconds, code, str(path), *needles)


def test_aliases_in_normal_use_still_work(tmp_path: Path):
    path = tmp_path / "buildspec.yml"
    path.write_text(HEAD + "phases:\n  pre_build:\n    commands: &make [make a, make b]\n"
                    "  build:\n    commands: *make\n  post_build:\n    commands: *make\n", encoding="utf-8")
    run, seconds = _run(str(path))
    _assert_clean_exit(run, seconds, 0)


def test_devices_and_fifos_are_never_read(tmp_path: Path):
    fifo = tmp_path / "buildspec.yml"
    os.mkfifo(fifo)
    for target in (fifo, Path("/dev/zero")):
        run, seconds = _run(str(target))
        _assert_clean_exit(run, seconds, 2, f"{target}: not a regular file")


def test_a_file_over_the_size_limit_is_refused_and_the_limit_can_be_raised(tmp_path: Path):
    path = tmp_path / "buildspec.yml"
    path.write_text(HEAD + "phases:\n  build:\n    commands:\n" + "      - echo hello\n" * 200_000)
    run, seconds = _run(str(path))
    _assert_clean_exit(run, seconds, 2, "more than the limit of 2,000,000", "--max-bytes")
    run, _ = _run("--max-bytes", "2000", str(tmp_path / "small-buildspec.yml"))
    assert run.returncode == 2
    small = tmp_path / "small-buildspec.yml"
    small.write_text(HEAD + "phases:\n  build:\n    commands: [make]\n")
    run, _ = _run("--max-bytes", "2000", str(small))
    assert run.returncode == 0, run.stderr
    assert _run("--max-bytes", "20", str(small))[0].returncode == 2


@pytest.mark.parametrize("layout", ["empty", "named-like-a-ci-file", "only-other-yaml"])
def test_a_folder_without_ci_files_is_exit_2(tmp_path: Path, layout):
    folder = tmp_path / ("buildspec.yml" if layout == "named-like-a-ci-file" else "repo")
    folder.mkdir()
    if layout == "only-other-yaml":
        (folder / "mkdocs.yml").write_text("site_name: docs\n")
    run, seconds = _run(str(folder))
    _assert_clean_exit(run, seconds, 2, f"{folder}: no CI file in this folder")


def test_the_current_folder_by_its_relative_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "buildspec.yml").write_text(HEAD + "phases:\n  build:\n    commands: [make]\n")
    monkeypatch.chdir(tmp_path)
    run, seconds = _run(".")
    _assert_clean_exit(run, seconds, 0, "1 file(s) checked")
