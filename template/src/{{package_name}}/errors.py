"""The two ways a stage ends early; `__main__` turns them into exit codes 2 and 1."""


class ConfigError(Exception):
    """Bad input or configuration (exit 2). The message names the file and key."""


class StageFailed(Exception):
    """The stage ran and said no: a missed gate, a failed smoke test (exit 1)."""


class DataError(ConfigError):
    """The data cannot train a model anyone should trust (exit 2): names the file, column and count."""
