"""Everything this repository knows about AWS: its target, settings and platform definitions.

Nothing here is imported unless the aws target or section is used, so the local path needs none
of its SDKs."""
