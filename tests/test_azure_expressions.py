"""The one Azure Pipelines expression evaluator (validate and ci run), on the examples of Microsoft's
expressions documentation (learn.microsoft.com/azure/devops/pipelines/process/expressions)."""

from __future__ import annotations

import pytest

from mlops_gen.azure_expressions import CIDict, Evaluator, ExprError, check_condition
from mlops_gen.localci.azure_template import Expander

ROOTS = {
    "variables": {"letters": "ABC", "MyString": "a,b,c", "couldBeNull": None, "Build.SourceBranch": "refs/heads/main",
                  "major": "1", "minor": "2"},
    "parameters": {"myArray": ["a", "b", "c"], "myObject": {"k1": "v1", "k2": "v2"}, "toolset": "msbuild"},
}

DOCS = [
    # functions, with the documented results
    ("eq(variables.letters, 'ABC')", True),
    ("eq(variables.letters, 'abc')", True),                   # ordinal ignore-case
    ("ne(1, 2)", True),
    ("ge(5, 5)", True), ("gt(5, 2)", True), ("le(2, 2)", True), ("lt(2, 5)", True),
    ("in('B', 'A', 'B', 'C')", True),
    ("notIn('D', 'A', 'B', 'C')", True),
    ("contains('ABCDE', 'BCD')", True),
    ("containsValue(parameters.myArray, 'b')", True),
    ("containsValue(parameters.myObject, 'v2')", True),
    ("startsWith('ABCDE', 'AB')", True),
    ("endsWith('ABCDE', 'DE')", True),
    ("xor(True, False)", True),
    ("not(eq(1, 2))", True),
    ("and(eq(1, 1), ne(2, 3))", True), ("or(eq(1, 2), eq(2, 2))", True),
    ("length('fabrikam')", 8),
    ("length(parameters.myArray)", 3),
    ("lower('FOO')", "foo"), ("upper('foo')", "FOO"),
    ("trim('  variable  ')", "variable"),
    ("replace('https://www.tinfoilsecurity.com/saml/consume','https://www.tinfoilsecurity.com','http://server')",
     "http://server/saml/consume"),
    ("format('{0}.{1}', variables.major, variables.minor)", "1.2"),
    ("format('{{{0}}}', 'x')", "{x}"),
    ("coalesce(variables.couldBeNull, '', 'literal so it always works')", "literal so it always works"),
    ("split(variables.MyString, ',')", ["a", "b", "c"]),
    ("join(';', parameters.myArray)", "a;b;c"),
    ("join(';', split(variables.MyString, ','))", "a;b;c"),
    ("iif(eq(parameters.toolset, 'msbuild'), 'yes', 'no')", "yes"),
    ("variables['Build.SourceBranch']", "refs/heads/main"),
    # type casting: the right operand takes the left one's type
    ("eq(1.2.3, '1.2.3')", True),                             # version literal (two or three dots)
    ("gt(1.10.0, '1.9.0')", True),                            # versions compare part by part
    ("eq(1.2, '1.2')", True),                                 # one dot: a number
    ("eq('1.2.3', 1.2.3)", True),
    ("eq(true, 'True')", True),
    ("eq(false, '')", True),                                  # empty string is false
    ("eq(true, 'false')", True),                              # a non-empty string is true
    ("eq(0, '')", True),                                      # empty string is 0
    ("eq(1, 'one')", False),                                  # eq: a failed conversion is false
    ("eq('', null)", True),
]


@pytest.mark.parametrize(("expression", "expected"), DOCS)
def test_documented_examples(expression: str, expected: object) -> None:
    assert check_condition(expression) is None
    assert Evaluator(ROOTS).evaluate(expression) == expected


def test_ordering_a_value_that_cannot_convert_is_an_error() -> None:
    with pytest.raises(ExprError):
        Evaluator(ROOTS).evaluate("gt(1, 'one')")


@pytest.mark.parametrize(("condition", "problem"), [
    ("and(succeeded(), eq(variables['x'], 'y')", "unbalanced"),
    ("eq(variables['x'], 'y'))", "no matching '('"),
    ("eq('x', 'y", "never closed"),
    ("equals(1, 1)", "unknown function 'equals'"),
    ("eq(1)", "eq() takes 2 argument(s), got 1"),
    ("always(1)", "always() takes 0 argument(s)"),
    ("eq(deployTarget, 'aws')", "bare name 'deployTarget'"),
])
def test_static_check_names_the_problem(condition: str, problem: str) -> None:
    found = check_condition(condition)
    assert found is not None and problem in found.message, found and found.message


def test_template_expressions_inside_and_outside_quotes() -> None:
    """`${{ }}` in a quoted literal is text; outside quotes it is a value known after expansion."""
    assert check_condition("eq('use default', '${{ parameters.sha }}')") is None
    assert check_condition("and(succeeded(), ${{ parameters.enabled }})") is None
    assert check_condition("ne(variables['x'], $(y))") is None
    found = check_condition("eq('a', '${{ parameters.sha }}'")
    assert found is not None and "xxxx" not in found.message


def test_template_expressions_keep_their_own_quotes() -> None:
    """Azure expands `${{ }}` before reading the condition, so quotes inside it are its own."""
    assert check_condition("eq('${{ parameters['sha'] }}', '')") is None
    assert check_condition("eq(variables['x'], '${{ join(',', parameters.list) }}')") is None
    assert check_condition("and(succeeded(), ${{ parameters['enabled'] }})") is None
    found = check_condition("eq('${{ parameters['sha'] }}', 'a'")
    assert found is not None and "parameters" not in found.message


def test_each_and_if_insertion(tmp_path) -> None:
    """The documentation's `${{ each }}` over an object parameter and `${{ if }}` insertion."""
    doc = {
        "parameters": [{"name": "listOfStrings", "type": "object", "default": ["one", "two"]},
                       {"name": "toolset", "type": "string", "default": "msbuild"}],
        "steps": [
            {"${{ each value in parameters.listOfStrings }}": [{"script": "echo ${{ value }}"}]},
            {"${{ if eq(parameters.toolset, 'msbuild') }}": [{"task": "MSBuild@1"}]},
            {"${{ if eq(parameters.toolset, 'dotnet') }}": [{"task": "DotNetCoreCLI@2"}]},
        ],
    }
    expanded = Expander(CIDict(), {}).pipeline(tmp_path / "azure-pipelines.yml", doc, {})
    assert expanded["steps"] == [{"script": "echo one"}, {"script": "echo two"}, {"task": "MSBuild@1"}]
