"""The positioned YAML data checkers see is the same whether libyaml composed it (the fast path) or
ruamel.yaml's round-trip loader did (the path every result was first written against): values, their
types, and every key's, value's, item's and string's position."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from mlops_gen.validate import yamlpos
from tests.validate.cases import CASES
from tests.validate.conftest import CORPUS, REPO


def _yaml_files() -> list[Path]:
    found = [p for root in (CORPUS, REPO / "ci-examples") for p in sorted(root.rglob("*"))
             if p.suffix in (".yml", ".yaml") and p.is_file()]
    assert len(found) > 100, "the corpus moved: this test would check too little"
    return found


def _same(fast, slow, where: str = "$") -> None:
    """Equal values of the same types, and equal positions wherever the data carries one."""
    assert type(fast) is type(slow), f"{where}: {type(fast).__name__} vs {type(slow).__name__}"
    for attr in ("line", "col", "value_pos", "item_pos", "plain", "block"):
        assert getattr(fast, attr, None) == getattr(slow, attr, None), f"{where}: {attr}"
    if isinstance(fast, dict):
        assert list(fast) == list(slow), f"{where}: keys"
        for (key, value), (slow_key, slow_value) in zip(fast.items(), slow.items(), strict=True):
            _same(key, slow_key, f"{where}.{key}(key)")
            _same(value, slow_value, f"{where}.{key}")
    elif isinstance(fast, list):
        assert len(fast) == len(slow), f"{where}: length"
        for i, (item, slow_item) in enumerate(zip(fast, slow, strict=True)):
            _same(item, slow_item, f"{where}[{i}]")
    elif isinstance(fast, float) and math.isnan(fast):
        assert math.isnan(slow), where
    elif type(fast).__module__.startswith("ruamel"):  # a tagged scalar: only ruamel builds those
        assert repr(fast) == repr(slow), where
    else:
        assert fast == slow, where


def _both(text: str):
    """(the fast path's result, ruamel's result, whether the fast path handed the text to ruamel)."""
    handed = []
    round_trip = yamlpos._load_round_trip

    def counted(t: str):
        handed.append(t)
        return round_trip(t)

    yamlpos._load_round_trip = counted
    try:
        try:
            fast = yamlpos.load(text)
        except yamlpos.YamlError as exc:
            fast = exc
    finally:
        yamlpos._load_round_trip = round_trip
    try:
        slow = round_trip(text)
    except yamlpos.YamlError as exc:
        slow = exc
    return fast, slow, bool(handed)


def test_every_ci_file_of_the_corpus_loads_the_same_and_most_without_ruamel() -> None:
    files = _yaml_files()
    handed = []
    for path in files:
        fast, slow, to_ruamel = _both(path.read_text(encoding="utf-8-sig"))
        if isinstance(slow, yamlpos.YamlError):
            assert fast == slow, path
        else:
            _same(fast, slow, str(path.relative_to(REPO)))
        if to_ruamel:
            handed.append(path)
    # the fast path must be the common one, or it only adds a second way to be wrong
    assert len(handed) < len(files) / 5, [str(p.relative_to(REPO)) for p in handed]


def test_every_validator_case_loads_the_same() -> None:
    texts = [text for case in CASES for text in case[2:4]]
    assert len(texts) > 50
    for text in texts:
        fast, slow, _ = _both(text)
        if isinstance(slow, yamlpos.YamlError):
            assert fast == slow, text
        else:
            _same(fast, slow, text[:60])


SCALARS = [
    # YAML 1.2 as ruamel reads it: no yes/no/on/off booleans, no sexagesimals, 017 is seventeen
    "true", "True", "TRUE", "tRue", "false", "yes", "No", "on", "OFF", "y", "~", "null", "Null", "NULL", "nULL",
    "0", "-0", "+12", "017", "0o17", "0o8", "0x1F", "0xAbC", "0b101", "0b2", "1_000", "1__0", "_", "_1", "0x_1",
    "1:30", "1:30.5", "190:20:30", "1.5", "1.", ".5", "-.5", "+.5", "1e3", "1E-3", "1.5e+3", ".5e3", ".5e+3",
    "1_0.5_0", ".inf", "-.Inf", "+.INF", ".nan", ".NaN", "-.nan", "0.", "- 1", "1 000", "12abc", "v1.2.3", "=",
    "2001-12-14", "2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.10", "2001-1-1 1:00:00", "20011214",
    "${{ parameters.x }}", "$(Build.BuildId)", "a: b", "'quoted'", '"1"', "'true'", "|\n  block\n", ">-\n  folded\n",
    "", "[1, 2]", "{a: 1}", "!!str 1", "!Ref x", "! x", "&a 1", "<<",
]


@pytest.mark.parametrize("scalar", SCALARS)
def test_a_scalar_as_a_value_and_as_a_key_loads_the_same(scalar: str) -> None:
    for text in (f"value: {scalar}\nnext: 1\n", f"- {scalar}\n- x\n", f"{scalar}: 1\nother: 2\n",
                 f"{{k: {scalar}}}\n", f"a: 1\n{scalar}: 2\na: 3\n"):
        fast, slow, _ = _both(text)
        if isinstance(slow, yamlpos.YamlError):
            assert fast == slow, text
        else:
            _same(fast, slow, repr(text))


def test_duplicate_keys_keep_the_first_value_and_its_position_as_ruamel_does() -> None:
    text = "steps:\n  - a\nsteps:\n  - b\n1: one\n'1': quoted one\ntrue: t\n"
    fast, slow, to_ruamel = _both(text)
    assert not to_ruamel
    _same(fast, slow)
    assert fast["steps"] == ["a"] and next(iter(fast)).line == 0


def test_an_explicit_tag_on_a_collection_is_checked_not_a_crash(check) -> None:
    """ruamel keeps no positions under a tag like `!Foo [..]`: the conversion used to raise TypeError."""
    run = check("cloudbuild.yaml", "steps: !Foo\n  - name: a\n    args: !Bar {x: 1}\n")
    assert run.code == 1 and run.findings, run.output
    assert {f["line"] for f in run.findings} <= {1, 2, 3}


def test_without_libyaml_every_file_takes_ruamels_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML built from source without libyaml has no CParser: validate still works, only slower."""
    monkeypatch.setattr(yamlpos, "CParser", None)
    fast, slow, to_ruamel = _both("steps:\n  - script: echo hi\n    enabled: true\n")
    assert to_ruamel
    _same(fast, slow)
