"""Data access: small stores over injected boto3 clients. AWS errors become domain errors here."""
