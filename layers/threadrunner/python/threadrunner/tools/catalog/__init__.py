"""The tools, one module each: every ``@tool`` declared in a module here is registered (tools/registry.py).

`threadrunner new tool NAME` writes a working one here, with its unit test.
"""
