"""The documents a finished response's answer cites: its ``file_citation`` annotations (file_search: a
document of the assistant's or the thread's store), once each, in the order the answer cites them. (The
``url_citation`` ones of web_search are read by engines/responses.py.)

A ``file_citation`` names the file, not the passage: the quote is the text of the best search result from
that file (``file_search_call.results``, which the engine asks for with ``include``), when there is one.
"""

from __future__ import annotations

from typing import Any

from threadrunner.models.records import Citation

QUOTE_CHARS = 500  # a quote is a passage, not the document


def file_citations(output: list[Any]) -> list[Citation]:
    quotes = _best_quotes(output)
    found: dict[str, Citation] = {}
    for item in output:
        if getattr(item, "type", None) != "message":
            continue
        for part in item.content:
            for annotation in getattr(part, "annotations", None) or []:
                if annotation.type == "file_citation":
                    found.setdefault(
                        annotation.file_id,
                        Citation(
                            type="file",
                            file_id=annotation.file_id,
                            filename=annotation.filename,
                            quote=quotes.get(annotation.file_id),
                        ),
                    )
    return list(found.values())


def _best_quotes(output: list[Any]) -> dict[str, str]:
    """file id -> the text of its highest-scoring search result (the first when scores tie)."""
    best: dict[str, tuple[float, str]] = {}
    for item in output:
        if getattr(item, "type", None) != "file_search_call":
            continue
        for result in getattr(item, "results", None) or []:
            if not result.file_id or not result.text:
                continue
            score = result.score if result.score is not None else 0.0
            if result.file_id not in best or score > best[result.file_id][0]:
                best[result.file_id] = (score, result.text.strip()[:QUOTE_CHARS])
    return {file_id: text for file_id, (_, text) in best.items()}
