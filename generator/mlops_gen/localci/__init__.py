"""`mlops-gen ci run`: a repository's own CI file, run locally and offline with the service's semantics."""
