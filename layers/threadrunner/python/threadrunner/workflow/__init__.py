"""The logic behind each step of run.asl.json; functions/<step>/handler.py only parses and calls."""
