"""Operate a deployed model: capture what the endpoint is asked (capture.py), the training data's
statistics saved with each version (baseline.py), the drift statistics (drift.py), the traffic of a
window (traffic.py), and the verdict with its report (verdict.py, html.py)."""
