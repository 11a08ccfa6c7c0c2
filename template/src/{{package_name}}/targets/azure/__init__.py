"""Everything this repository knows about Azure: its target, settings and platform definitions.

Nothing here is imported unless the azure target or section is used, so the local path needs none
of its SDKs."""
