"""EMF as Powertools prints it: the namespace, exact dimension sets (no implicit service), units."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.metrics import MetricUnit
from threadrunner import run_metrics

from tests.support.emf import dimensions_of, emf_documents, metric_names


def test_publish_writes_one_document_with_exactly_the_given_dimensions(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "threadrunner")  # as on every deployed function
    run_metrics.publish(
        {"RunDuration": (1.5, MetricUnit.Seconds), "ToolCalls": (2, MetricUnit.Count)},
        environment="prod",
        assistant="data-analyst",
        model="gpt-5-mini",
    )
    (document,) = emf_documents(capsys.readouterr().out)
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "threadrunner"
    assert dimensions_of(document) == {
        "environment": "prod",
        "assistant": "data-analyst",
        "model": "gpt-5-mini",
    }
    units = {m["Name"]: m["Unit"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert units == {"RunDuration": "Seconds", "ToolCalls": "Count"}
    assert document["RunDuration"] == [1.5] and "service" not in document


def test_count_publishes_by_environment_and_by_assistant(capsys: pytest.CaptureFixture[str]) -> None:
    # How the chat engine counts a fallback
    run_metrics.count(run_metrics.FALLBACKS, environment="dev", assistant="data-analyst", model="gpt-5-mini")
    documents = emf_documents(capsys.readouterr().out)
    assert [dimensions_of(d) for d in documents] == [
        {"environment": "dev"},
        {"environment": "dev", "assistant": "data-analyst", "model": "gpt-5-mini"},
    ]
    assert all(metric_names(d) == {"Fallbacks"} for d in documents)


def test_nothing_to_publish_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    run_metrics.publish({}, environment="dev")
    assert emf_documents(capsys.readouterr().out) == []
