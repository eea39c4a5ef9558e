"""Programs a test drives (Debian packages): a missing one skips the test on a laptop and fails it on CI."""

from __future__ import annotations

import os
import shutil

import pytest


def required_program(name: str, *, package: str) -> str:
    """The path of ``name``; skips the test without it, except on CI (CI=true), where that is a failure."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not found (Debian: apt-get install -y {package})"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI must run this test", pytrace=False)
        pytest.skip(reason)
    return path
