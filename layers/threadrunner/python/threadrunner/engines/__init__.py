"""Engines run the assistant/thread/run model on an upstream. See base.Engine."""
