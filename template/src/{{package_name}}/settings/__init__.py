"""Per-cloud sections of mlops.yaml, one module per cloud this repository was generated for."""
