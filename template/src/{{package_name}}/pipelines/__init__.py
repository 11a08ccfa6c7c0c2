"""Managed-training pipeline definitions, one module per cloud (SageMaker, Azure ML, Vertex AI/KFP)."""
