"""Train, gate, register, deploy and smoke-test a scikit-learn model on any of the targets."""

__version__ = "0.1.0"
