from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Unknown keys are errors: a typo in mlops.yaml must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")
