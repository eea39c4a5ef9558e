"""What the HTTP API does, as plain functions over stores (functions/api maps them to routes)."""
