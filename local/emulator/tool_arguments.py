"""The arguments the emulator's model writes for a function tool: a value that satisfies the tool's JSON
schema, derived deterministically from the schema and the user's question.

No model guesses here: the same schema and question always give the same arguments. For each value, in
order: ``const``, ``enum`` (the value the question mentions, else the first), ``default``, ``examples``;
then by type. Objects get their required properties (and more while ``minProperties`` asks), arrays one
item (or ``minItems``), numbers a number of the question within the bounds, else the lowest the bounds
allow, booleans ``false``. Strings come from the question: all of it for a query-like property (``query``,
``question``, ``text``...), else the word next to the property's name (``the customers table`` gives
``table`` the value ``customers``), a capitalised name (``weather in Paris``), the description's example
(``e.g. sales``), the question's key words; ``format`` (date, email, uri, uuid...) gives a value of that
format, and ``minLength``, ``maxLength`` and a simple ``pattern`` are honoured. ``$ref`` into ``$defs``,
``allOf``, ``anyOf`` and ``oneOf`` (the first option that is not null) are followed.
"""

from __future__ import annotations

import copy
import importlib
import math
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

_MAX_DEPTH = 8  # a recursive schema stops here (with the smallest value it allows)
_WORD = re.compile(r"[A-Za-z0-9][A-Za-z0-9'_-]*")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.]*[A-Za-z])")
_EXAMPLE = re.compile(
    r"\b(?:e\.g\.|for example|such as)[,:]?\s*[\"'`]?([A-Za-z0-9_@./:+-]*[A-Za-z0-9_])", re.I
)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
# Property names whose value is the user's text itself.
_FULL_TEXT = {"query", "question", "text", "prompt", "message", "input", "q", "search", "content", "body"}
_FORMATS = {
    "email": "user@example.com",
    "idn-email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "iri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "time": "12:00:00Z",
    "duration": "P1D",
}
_STOPWORD_TEXT = """
    a an and are as at be but by can could did do does for from get give had has have how i if in into is it
    its let me my no not of on or our please say see show so tell than that the their them then there these they
    this those to us was we were what when where which who why will with would you your all any some each every
    everything anything something just now about also one two three four five six seven eight nine ten go hi
    hello hey thanks thank ok okay yes describe find list many much more most least last next"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def arguments_for(schema: Mapping[str, Any] | None, question: str, *, today: date) -> dict[str, Any]:
    """Arguments for a tool whose parameters are ``schema`` (an object schema; none means no arguments)."""
    root = dict(schema) if isinstance(schema, Mapping) else {"type": "object"}
    value = _Writer(root, question, today).value(root, name="", depth=0)
    return value if isinstance(value, dict) else {}


def words(text: str) -> list[str]:
    """The words of a text, as written."""
    return _WORD.findall(text)


def normalized(word: str) -> str:
    """A word to compare by: lower case, a plural ``s`` dropped (``tables`` and ``table`` match)."""
    word = word.lower().strip("'-_")
    return word[:-1] if len(word) > 3 and word.endswith("s") and not word.endswith("ss") else word


def key_words(text: str) -> set[str]:
    """The words of a text that say something (no stop words), normalized."""
    return {normalized(word) for word in words(text) if word.lower() not in STOPWORDS and len(word) > 1}


def name_words(name: str) -> set[str]:
    """The words of an identifier: ``get_weather``, ``getWeather`` and ``get-weather`` all say weather."""
    return key_words(" ".join(re.split(r"[_\-\s]+", _CAMEL.sub(" ", name))))


class _Writer:
    def __init__(self, root: dict[str, Any], question: str, today: date) -> None:
        self._root = root
        self._question = " ".join(question.split())
        self._words = words(self._question)
        self._today = today

    def value(self, schema: Any, *, name: str, depth: int, variant: int = 0) -> Any:
        schema = self._resolve(schema, depth)
        if schema is True or schema is None:
            return self._string({}, name, variant)
        if not isinstance(schema, dict):
            return None  # ``false``: nothing satisfies it
        if "const" in schema:
            return copy.deepcopy(schema["const"])
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return copy.deepcopy(self._enum(schema["enum"], variant))
        if "default" in schema:
            return copy.deepcopy(schema["default"])
        if isinstance(schema.get("examples"), list) and schema["examples"]:
            return copy.deepcopy(schema["examples"][variant % len(schema["examples"])])
        if isinstance(schema.get("allOf"), list):
            merged = dict(schema)
            for part in merged.pop("allOf"):
                merged = _merge(merged, self._resolve(part, depth))
            return self.value(merged, name=name, depth=depth, variant=variant)
        for key in ("anyOf", "oneOf"):
            if isinstance(schema.get(key), list) and schema[key]:
                options = [self._resolve(option, depth) for option in schema[key]]
                chosen = next((o for o in options if _type_of(o) != "null"), options[0])
                rest = {k: v for k, v in schema.items() if k != key}
                return self.value(_merge(rest, chosen), name=name, depth=depth, variant=variant)
        kind = _type_of(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind in ("integer", "number"):
            return self._number(schema, integer=kind == "integer", variant=variant)
        if kind == "boolean":
            return variant % 2 == 1
        if kind == "null":
            return None
        return self._string(schema, name, variant)

    def _resolve(self, schema: Any, depth: int) -> Any:
        """Follow ``$ref`` (``#/...`` pointers into the same document); sibling keywords are kept."""
        hops = 0
        while isinstance(schema, dict) and isinstance(schema.get("$ref"), str) and hops < _MAX_DEPTH:
            target = self._pointer(schema["$ref"])
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = _merge(rest, target) if isinstance(target, dict) else target
            hops += 1
        return schema

    def _pointer(self, ref: str) -> Any:
        if not ref.startswith("#"):
            return {}
        node: Any = self._root
        for part in ref[1:].split("/")[1:] if ref != "#" else []:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return {}
            node = node[part]
        return node

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        if depth > _MAX_DEPTH:
            return {}
        found = schema.get("properties")
        properties: dict[str, Any] = found if isinstance(found, dict) else {}
        extra = schema.get("additionalProperties", True)
        names = [key for key in schema.get("required", []) if isinstance(key, str)]
        wanted = int(schema.get("minProperties", 0) or 0)
        names += [key for key in properties if key not in names][: max(wanted - len(names), 0)]
        while len(names) < wanted and extra is not False:
            names.append(f"field_{len(names) + 1}")
        return {
            key: self.value(
                properties.get(key, extra if isinstance(extra, dict) else {}), name=key, depth=depth + 1
            )
            for key in names
        }

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        found = schema.get("prefixItems")
        prefix: list[Any] = found if isinstance(found, list) else []
        items = schema.get("items", {})
        low = int(schema.get("minItems", 0) or 0)
        high = schema.get("maxItems")
        count = max(low, 1, len(prefix)) if depth <= _MAX_DEPTH else low
        if isinstance(high, int):
            count = min(count, high)
        if items is False:
            count = min(count, len(prefix))
        values = []
        for index in range(count):
            item = prefix[index] if index < len(prefix) else items
            if index == 0 and "contains" in schema and not prefix:
                item = schema["contains"]
            # Items of a uniqueItems array differ by their variant; others repeat the first value.
            variant = index if schema.get("uniqueItems") else 0
            values.append(self.value(item, name=name, depth=depth + 1, variant=variant))
        return values

    def _enum(self, choices: list[Any], variant: int) -> Any:
        mentioned = {word.lower() for word in self._words}
        for choice in choices:
            if isinstance(choice, str) and choice.lower() in mentioned:
                return choice
        return choices[variant % len(choices)]

    def _number(self, schema: dict[str, Any], *, integer: bool, variant: int) -> int | float:
        for found in _NUMBER.findall(self._question):
            number = float(found) + variant
            if _number_fits(number, schema, integer):
                return int(number) if integer else number
        low, high = (
            _bound(schema, "minimum", "exclusiveMinimum"),
            _bound(schema, "maximum", "exclusiveMaximum"),
        )
        start = 1.0
        if low is not None:
            value, exclusive = low
            if integer:
                start = math.floor(value) + 1 if exclusive else math.ceil(value)
            elif exclusive:
                start = value + 1 if high is None or value + 1 < high[0] else (value + high[0]) / 2
            else:
                start = value
        elif high is not None:
            value, exclusive = high
            start = min(1.0, value - 1 if exclusive else value)
        start += variant
        step = schema.get("multipleOf")
        if isinstance(step, int | float) and step > 0:
            start = math.ceil(start / step) * step
        if integer:
            start = math.ceil(start)
        return int(start) if integer else float(start)

    def _string(self, schema: dict[str, Any], name: str, variant: int) -> str:
        candidates = self._string_candidates(schema, name)
        if variant:
            candidates = [f"{candidate} {variant + 1}" for candidate in candidates]
        pattern = schema.get("pattern") if isinstance(schema.get("pattern"), str) else None
        low = int(schema.get("minLength", 0) or 0)
        high = schema.get("maxLength") if isinstance(schema.get("maxLength"), int) else None
        fitted = [_fit_length(candidate, low, high) for candidate in candidates]
        for candidate in fitted:
            if pattern is None or _matches(pattern, candidate):
                return candidate
        if pattern is not None:
            for stretch in (0, 1, low):
                example = pattern_example(pattern, stretch=stretch + variant)
                if example is not None and low <= len(example) and (high is None or len(example) <= high):
                    return example
        return fitted[0]

    def _string_candidates(self, schema: dict[str, Any], name: str) -> list[str]:
        candidates = []
        fmt = schema.get("format")
        if fmt == "date":
            candidates.append(self._today.isoformat())
        elif fmt == "date-time":
            candidates.append(f"{self._today.isoformat()}T00:00:00Z")
        elif isinstance(fmt, str) and fmt in _FORMATS:
            candidates.append(_FORMATS[fmt])
        own = name_words(name)
        if own & {normalized(word) for word in _FULL_TEXT} and self._question:
            candidates.append(self._question)
        if (neighbour := self._neighbour(own)) is not None:
            candidates.append(neighbour)
        if (proper := self._proper_name()) is not None:
            candidates.append(proper)
        described = _EXAMPLE.search(str(schema.get("description", "")))
        if described:
            candidates.append(described.group(1))
        keywords = [word for word in self._words if word.lower() not in STOPWORDS]
        if keywords:
            candidates.append(" ".join(keywords[:5]))
        candidates.append(name or "example")
        return candidates

    def _neighbour(self, own: set[str]) -> str | None:
        """The word before the property's name in the question (else after it): ``the customers table``."""
        if not own:
            return None
        for index, word in enumerate(self._words):
            if normalized(word) in own:
                for other in (index - 1, index + 1):
                    if 0 <= other < len(self._words):
                        candidate = self._words[other]
                        if candidate.lower() not in STOPWORDS and normalized(candidate) not in own:
                            return candidate
        return None

    def _proper_name(self) -> str | None:
        """The first capitalised words after the question's first word: ``Paris``, ``New York``."""
        run: list[str] = []
        for index, word in enumerate(self._words):
            if index > 0 and word[0].isupper() and word.lower() not in STOPWORDS:
                run.append(word)
            elif run:
                break
        return " ".join(run) or None


def _type_of(schema: Any) -> str:
    if not isinstance(schema, dict):
        return "any"
    kind = schema.get("type")
    if isinstance(kind, list):
        return next((k for k in kind if k != "null"), "null") if kind else "string"
    if isinstance(kind, str):
        return kind
    if any(key in schema for key in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(key in schema for key in ("items", "prefixItems", "minItems", "maxItems", "contains")):
        return "array"
    if any(
        key in schema for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")
    ):
        return "number"
    return "string"


def _merge(base: dict[str, Any], other: Any) -> dict[str, Any]:
    """Two schemas that must both hold, as one (properties and required lists are joined)."""
    if not isinstance(other, dict):
        return dict(base)
    merged = {**base, **other}
    if isinstance(base.get("properties"), dict) and isinstance(other.get("properties"), dict):
        merged["properties"] = {**base["properties"], **other["properties"]}
    if isinstance(base.get("required"), list) and isinstance(other.get("required"), list):
        merged["required"] = list(dict.fromkeys([*base["required"], *other["required"]]))
    return merged


def _bound(schema: dict[str, Any], inclusive: str, exclusive: str) -> tuple[float, bool] | None:
    """A bound and whether it is exclusive (draft 4's boolean ``exclusiveMinimum`` too)."""
    value = schema.get(exclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), True
    value = schema.get(inclusive)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value), schema.get(exclusive) is True
    return None


def _number_fits(number: float, schema: dict[str, Any], integer: bool) -> bool:
    if integer and not number.is_integer():
        return False
    low, high = _bound(schema, "minimum", "exclusiveMinimum"), _bound(schema, "maximum", "exclusiveMaximum")
    if low is not None and (number < low[0] or (low[1] and number == low[0])):
        return False
    if high is not None and (number > high[0] or (high[1] and number == high[0])):
        return False
    step = schema.get("multipleOf")
    return not (isinstance(step, int | float) and step > 0 and not (number / step).is_integer())


def _fit_length(text: str, low: int, high: int | None) -> str:
    if len(text) < low:
        text = text + "x" * (low - len(text))
    return text[:high] if high is not None else text


def _matches(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True  # a pattern Python cannot read (ECMA-only syntax) is not ours to enforce


# Python's own regular expression parser reads the pattern; a string is written from its parse tree.
_parser: Any = importlib.import_module("re._parser")
_CATEGORY_MEMBERS = {
    "CATEGORY_DIGIT": str.isdigit,
    "CATEGORY_NOT_DIGIT": lambda c: not c.isdigit(),
    "CATEGORY_SPACE": str.isspace,
    "CATEGORY_NOT_SPACE": lambda c: not c.isspace(),
    "CATEGORY_WORD": lambda c: c.isalnum() or c == "_",
    "CATEGORY_NOT_WORD": lambda c: not (c.isalnum() or c == "_"),
}
_CLASS_CANDIDATES = "a0A _-.x"


class _Unsupported(Exception):
    pass


def pattern_example(pattern: str, *, stretch: int = 0) -> str | None:
    """A string ``pattern`` finds (each repetition at its minimum, plus ``stretch`` where it may), or
    ``None`` when the pattern is not simple enough (back-references, conflicting lookarounds...)."""
    try:
        text = _emit(_parser.parse(pattern), stretch)
    except (_Unsupported, re.error, RecursionError, TypeError, ValueError, OverflowError):
        return None
    return text if _matches(pattern, text) else None


def _emit(items: Any, stretch: int) -> str:
    return "".join(_emit_one(str(op), argument, stretch) for op, argument in items)


def _emit_one(op: str, argument: Any, stretch: int) -> str:
    if op == "LITERAL":
        return chr(argument)
    if op == "NOT_LITERAL":
        return "a" if argument != ord("a") else "b"
    if op == "ANY":
        return "a"
    if op == "IN":
        return _class_char(argument)
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, high, sub = argument
        count = low if stretch <= 0 else min(high, max(low, stretch))
        return _emit(sub, stretch) * min(count, 1000)
    if op == "SUBPATTERN":
        return _emit(argument[-1], stretch)
    if op == "ATOMIC_GROUP":
        return _emit(argument, stretch)
    if op == "BRANCH":
        return _emit(argument[1][0], stretch)
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return ""
    raise _Unsupported(op)


def _class_char(items: Any) -> str:
    negate = any(str(op) == "NEGATE" for op, _ in items)
    members = [(str(op), argument) for op, argument in items if str(op) != "NEGATE"]
    if not negate:
        op, argument = members[0]
        if op == "LITERAL":
            return chr(argument)
        if op == "RANGE":
            return chr(argument[0])
    for candidate in _CLASS_CANDIDATES:
        if _in_class(candidate, members) != negate:
            return candidate
    raise _Unsupported("character class")


def _in_class(char: str, members: list[tuple[str, Any]]) -> bool:
    for op, argument in members:
        if op == "LITERAL" and char == chr(argument):
            return True
        if op == "RANGE" and argument[0] <= ord(char) <= argument[1]:
            return True
        if op == "CATEGORY" and _CATEGORY_MEMBERS.get(str(argument), lambda c: False)(char):
            return True
    return False
