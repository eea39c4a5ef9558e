"""Pydantic models at every boundary: DynamoDB records, API bodies, workflow state."""
