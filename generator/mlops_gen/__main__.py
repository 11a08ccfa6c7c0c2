from mlops_gen.cli import run

run()
