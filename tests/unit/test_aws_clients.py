"""Every AWS client the library makes has explicit timeouts and standard retries (not botocore's 60 s)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from threadrunner import aws


@pytest.fixture(autouse=True)
def fresh_clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    aws.reset_clients()
    yield
    aws.reset_clients()


@pytest.mark.parametrize(
    "made",
    [
        lambda: aws.client("stepfunctions"),
        lambda: aws.table("threads").meta.client,
        lambda: aws.presigning_s3("http://127.0.0.1:9000"),
    ],
    ids=["client", "table", "presigning"],
)
def test_clients_time_out_and_retry_explicitly(made: object) -> None:
    # When the library makes a client
    config = made().meta.config  # type: ignore[operator]
    # Then it gives up on a silent connection within seconds and retries in standard mode
    assert (config.connect_timeout, config.read_timeout) == (3, 15)
    assert config.retries == {"mode": "standard", "total_max_attempts": 3}


def test_presigned_urls_keep_sigv4_and_path_style_locally() -> None:
    config = aws.presigning_s3("http://127.0.0.1:9000").meta.config
    assert config.signature_version == "s3v4"
    assert config.s3 == {"addressing_style": "path"}
