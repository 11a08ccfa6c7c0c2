from mlops_gen.cli import main

main()
