"""Free-text answers are user text: quoted for the language they land in, never executed, never
breaking a file, and they arrive intact."""

from __future__ import annotations

import ast
import tempfile
import tomllib
from pathlib import Path

import yaml
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import strategies as st

from tests.helpers import render

NASTY = ["'", '"', ":", "#", "\\", "{{ x }}", "${{ y }}", "$(rm -rf /)", "$VAR", "`id`", "%", "&", "*a", "!Ref",
         "- ", "|", ">", "ü", "日本", "🚀", "\t", "{% raw %}", "'''", '"""', "--", "null", "true", "0x1F", "@"]

# One-line text without control characters (the validators refuse those; see test_questions).
text = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(st.characters(blacklist_categories=("Cc", "Cs", "Zl", "Zp")), max_size=6)),
    min_size=1, max_size=8,
).map("".join).filter(lambda s: s.strip() and "\t" not in s and len(s) <= 80)


def _check(repo: Path, name: str, description: str, author: str) -> None:
    project = tomllib.loads((repo / "pyproject.toml").read_text())["project"]
    assert project["description"] == description
    assert project["authors"][0]["name"] == author
    assert yaml.safe_load((repo / "mlops.yaml").read_text())["project"] == name
    answers = yaml.safe_load((repo / ".copier-answers.yml").read_text())
    assert (answers["project_name"], answers["description"], answers["author_name"]) == (name, description, author)
    assert name in (repo / "README.md").read_text()
    for path in repo.rglob("*.py"):
        ast.parse(path.read_text(), str(path))
    for path in [*repo.rglob("*.yml"), *repo.rglob("*.yaml")]:
        if "infra" not in path.parts:  # CloudFormation short tags need a tag-aware loader
            list(yaml.safe_load_all(path.read_text()))


# Each example is a full render (~1 s): no shrinking, so a failure reports fast and CI stays bounded.
@settings(max_examples=12, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.too_slow])
@given(name=text, description=text, author=text)
@example(name="'''0x1F", description="'", author="'")  # a slug starting with a digit
@example(name="\U0009c48e~p🚀", description="|%", author=">")  # a one-letter slug
def test_hostile_free_text_renders_parseable_files(name: str, description: str, author: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = render(Path(tmp) / "repo", project_name=name, description=description, author_name=author,
                      package_name="hostile_pkg")
        _check(repo, name, description, author)
