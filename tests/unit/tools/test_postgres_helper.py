"""The test PostgreSQL helper: a missing server skips the tests on a laptop but fails them on CI."""

from __future__ import annotations

import pytest

from tests.support import postgres


def test_missing_binaries_skip_locally_and_fail_on_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(postgres, "find_bin_dir", lambda: None)
    start = postgres.shared_server.__wrapped__  # past the per-process cache
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL server binaries not found"):
        start()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the PostgreSQL tests"):
        start()
