"""The base of every mlops.yaml section; each cloud's section lives with its target
(targets/<cloud>/settings.py)."""

from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict

# False while config.load(deep=False) validates: checks that import heavy libraries (scikit-learn,
# botocore's service models) are skipped for stages that build or call nothing with them.
DEEP_CHECKS: ContextVar[bool] = ContextVar("deep_checks", default=True)


class Strict(BaseModel):
    """Unknown keys are errors: a typo in mlops.yaml must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")
