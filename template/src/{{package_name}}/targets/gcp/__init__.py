"""Everything this repository knows about Google Cloud: its target, settings and platform definitions.

Nothing here is imported unless the gcp target or section is used, so the local path needs none
of its SDKs."""
