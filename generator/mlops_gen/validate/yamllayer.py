"""The YAML layer: yamllint with the shipped configuration, and the parse with positions."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib.resources import files

from mlops_gen.validate.findings import Finding
from mlops_gen.validate.rules import severity_of

# yamllint rule -> our rule id
_RULE_IDS = {
    None: "yaml-syntax",
    "key-duplicates": "yaml-duplicate-key",
    "anchors": "yaml-undeclared-alias",
    "octal-values": "yaml-octal",
}


@lru_cache(maxsize=1)
def yamllint_config():
    from yamllint.config import YamlLintConfig

    return YamlLintConfig(files("mlops_gen.validate").joinpath("data/yamllint.yaml").read_text())


def yamllint_findings(path: str, text: str, parsed: bool) -> list[Finding]:
    """yamllint's findings. When the file already `parsed` (ruamel succeeded), yamllint's own second
    full parse for syntax errors is skipped and only its rules run: same findings, a third less work."""
    from yamllint import linter

    if parsed:
        first_line = text.split("\n", 1)[0]
        if re.match(r"^#\s*yamllint disable-file\s*$", first_line):
            return []
        problems = linter.get_cosmetic_problems(text, yamllint_config(), None)
    else:
        problems = linter.run(text, yamllint_config())
    out = []
    for problem in problems:
        rule = _RULE_IDS.get(problem.rule)
        if rule is None:
            continue
        message = problem.desc
        if rule == "yaml-syntax":
            message = message.removeprefix("syntax error: ")
            message = f"not valid YAML: {message}"
        elif rule == "yaml-undeclared-alias":
            message = f"{message}: declare the anchor (&name) before using the alias (*name)"
        elif rule == "yaml-octal":
            message = f"{message}: YAML 1.1 loaders read it as an octal number; quote it if it is a string"
        elif rule == "yaml-duplicate-key":
            message = f"{message}: YAML loaders keep only one of the values; remove or rename one"
        out.append(Finding(path, problem.line, problem.column, rule, message, severity_of(rule)))
    return out
