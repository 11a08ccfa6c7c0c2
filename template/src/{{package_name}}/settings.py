"""The base of every mlops.yaml section; each cloud's section lives with its target (targets/<cloud>/settings.py)."""

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors: a typo in mlops.yaml must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")
