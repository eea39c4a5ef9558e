"""Reading what Powertools printed: the CloudWatch EMF documents in captured stdout."""

from __future__ import annotations

import json
from typing import Any


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    """Every EMF document (a JSON line with an ``_aws`` block) in ``stdout``."""
    documents = []
    for line in stdout.splitlines():
        if not line.startswith("{"):
            continue
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    return documents


def dimensions_of(document: dict[str, Any]) -> dict[str, str]:
    (dimension_set,) = document["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    return {name: document[name] for name in dimension_set}


def metric_names(document: dict[str, Any]) -> set[str]:
    return {metric["Name"] for metric in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]}


def by_dimensions(documents: list[dict[str, Any]]) -> dict[tuple[tuple[str, str], ...], dict[str, Any]]:
    """Metric values per dimension set (sorted (name, value) pairs), for documents of one namespace."""
    found: dict[tuple[tuple[str, str], ...], dict[str, Any]] = {}
    for document in documents:
        key = tuple(sorted(dimensions_of(document).items()))
        values = found.setdefault(key, {})
        for name in metric_names(document):
            assert name not in values, f"{name} published twice under {dict(key)}"
            value = document[name]  # Powertools writes a list of the values added under one name
            values[name] = value[0] if isinstance(value, list) and len(value) == 1 else value
    return found
