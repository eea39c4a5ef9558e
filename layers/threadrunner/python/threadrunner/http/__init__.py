"""The HTTP API's plumbing around its routes (functions/api/handler.py): how bodies are read, what each route
documents it answers, domain errors mapped to HTTP, 405s from the app's own routes, and API Gateway's routes."""
