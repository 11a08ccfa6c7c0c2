"""ci-examples/ is what `mlops-gen examples` renders today: a stale folder fails here."""

from click.testing import CliRunner

from mlops_gen.cli import main


def test_ci_examples_are_fresh() -> None:
    result = CliRunner().invoke(main, ["examples", "--check"])
    assert result.exit_code == 0, f"run `make examples` and commit ci-examples/:\n{result.output}"
