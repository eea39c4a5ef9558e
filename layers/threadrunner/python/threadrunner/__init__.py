"""threadrunner: the shared library behind every Lambda (shipped as a layer, installed in development)."""
