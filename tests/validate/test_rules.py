"""Every rule: a failing example reported at the right line, and a passing example."""

from __future__ import annotations

import pytest

from mlops_gen.validate.rules import RULES, severity_of
from tests.validate.cases import CASES


def test_every_rule_has_a_case():
    covered = {rule for rule, *_ in CASES}
    assert set(RULES) - {"cfn"} <= covered


@pytest.mark.parametrize(("rule", "name", "bad", "good", "line"), CASES, ids=[c[0] for c in CASES])
def test_rule(check, rule, name, bad, good, line):
    failing = check(name, bad, "--strict")
    hits = [f for f in failing.findings if f["rule"] == rule]
    assert hits, failing.output
    assert hits[0]["line"] == line, hits
    assert hits[0]["severity"] == severity_of(rule)
    assert failing.code == (0 if severity_of(rule) == "note" else 1)  # notes never fail, even --strict
    assert len(hits[0]["message"]) > 30  # says what is wrong and what to do

    passing = check(name, good, "--strict")
    assert passing.findings == [], passing.output
    assert passing.code == 0
