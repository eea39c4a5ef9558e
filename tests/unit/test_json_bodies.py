"""Request bodies are read as bounded JSON: nothing a client sends makes the parser recurse or convert without
end (threadrunner.http.json_bodies)."""

from __future__ import annotations

import time

import pytest
from threadrunner.http.json_bodies import (
    MAX_DEPTH,
    MAX_INT_DIGITS,
    MalformedBodyError,
    read_json,
    refused_media_type,
)


@pytest.mark.parametrize(
    "text",
    [
        "[" * 1000 + "]" * 1000,  # Python's parser raises RecursionError near here
        '{"a":' * 5000 + "1" + "}" * 5000,
        "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1),
        "[" * 100_000,  # not even JSON: the depth is refused first, cheaply
    ],
)
def test_a_body_nested_past_the_bound_is_refused_naming_the_body(text: str) -> None:
    with pytest.raises(MalformedBodyError) as refused:
        read_json(text)

    assert refused.value.field == "body"
    assert f"deeper than {MAX_DEPTH}" in str(refused.value)


def test_nesting_up_to_the_bound_is_read_and_brackets_in_strings_do_not_count() -> None:
    at_the_bound = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    in_strings = '{"message": "' + "[{" * 10_000 + '\\"]' + '"}'

    assert read_json(at_the_bound) is not None
    assert read_json(in_strings)["message"].startswith("[{[{")


@pytest.mark.parametrize("digits", [MAX_INT_DIGITS + 1, 4_301, 5_000])
def test_an_integer_longer_than_the_bound_is_refused_before_int_converts_it(digits: int) -> None:
    for sign in ("", "-"):
        with pytest.raises(MalformedBodyError, match=f"more than {MAX_INT_DIGITS} digits"):
            read_json('{"size_bytes": ' + sign + "9" * digits + "}")


def test_integers_up_to_the_bound_and_floats_are_numbers() -> None:
    assert read_json("-" + "9" * MAX_INT_DIGITS) == -int("9" * MAX_INT_DIGITS)
    assert read_json("1e400") == float("inf")  # a float of any length is a float (and then no int field's)


@pytest.mark.parametrize("text", ["NaN", '{"a": Infinity}', "[-Infinity]", "{not json", "", '{"a": 1} x'])
def test_what_is_not_json_is_refused_naming_the_body(text: str) -> None:
    with pytest.raises(MalformedBodyError) as refused:
        read_json(text)

    assert refused.value.field == "body"


def test_a_large_flat_body_is_read_quickly() -> None:
    text = '{"message": "' + "x" * 400_000 + '", "file_ids": [' + ", ".join(['"f"'] * 10_000) + "]}"

    started = time.perf_counter()
    read_json(text)

    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    ("headers", "body", "refused"),
    [
        ({"content-type": "application/json"}, "{}", None),
        ({"Content-Type": "application/json; charset=utf-8"}, "{}", None),
        ({"content-type": "Application/JSON"}, "{}", None),
        ({}, "{}", None),  # no Content-Type: read as JSON
        ({"content-type": "text/plain"}, "", None),  # no body: nothing to refuse
        ({"content-type": "text/plain"}, None, None),
        ({"content-type": "text/plain; charset=utf-8"}, "{}", "text/plain"),
        ({"content-type": "application/xml"}, "<a/>", "application/xml"),
        ({"content-type": "application/x-www-form-urlencoded"}, "a=b", "application/x-www-form-urlencoded"),
        ({"content-type": "multipart/form-data"}, "--x", "multipart/form-data"),
        ({"content-type": "application/problem+json"}, "{}", "application/problem+json"),
    ],
)
def test_a_body_in_another_format_than_json_is_named(
    headers: dict[str, str], body: str | None, refused: str | None
) -> None:
    assert refused_media_type(headers, body) == refused
