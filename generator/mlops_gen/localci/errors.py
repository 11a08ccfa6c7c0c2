"""Errors that end a local CI run before (or instead of) running steps: exit status 2."""

from __future__ import annotations


class CIUsageError(Exception):
    """Bad usage, or a CI file this runner cannot run (unknown task, unmapped image, ...).

    The message names the offending key, task or image; the command exits with status 2.
    """
