"""The one place JSON bodies are parsed and checked: finite numbers, bounded depth, keys and size.

Every JSON body the API accepts goes through `loads` before its schema sees it, and every JSON
value stored goes through `dumps`, which refuses NaN and infinity. The limits are documented in
docs/api.md and shown in the OpenAPI schemas.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import pydantic_core

from feedback.errors import FeedbackError, ValidationFailed
from feedback.validation import field_path

MAX_DEPTH = 32  # nested arrays and objects in any body, the body itself being level 1
MAX_KEYS = 256  # keys in any one object
MAX_KEY_LENGTH = 128  # characters in any object key
MAX_INTEGER = 2**63 - 1  # integers are 64-bit, as every store and export format holds them
FEATURES_MAX_BYTES = 64 * 1024  # `features` of one recommendation, as compact UTF-8 JSON
SEGMENT_MAX_KEYS = 32  # attributes of one recommendation's `segment`
SEGMENT_KEY_PATTERN = r"^[A-Za-z0-9_]{1,64}$"  # what a breakdown by `segment.ATTR` can name
SEGMENT_KEY = re.compile(SEGMENT_KEY_PATTERN)
SEGMENT_VALUE_MAX_LENGTH = 200  # characters of a text segment value (breakdowns key on it)
NON_FINITE = ("NaN", "Infinity", "-Infinity")


class MalformedJson(FeedbackError):
    """The body is not JSON at all."""

    code = "bad_request"  # what werkzeug answered before, which clients may match on
    status = 400


class _Breach(Exception):
    """A limit broken somewhere inside a value; `path` is filled in on the way out."""

    def __init__(self, problem: str, *path: int | str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.path = list(path)


def _key_of(container: dict[str, Any] | list[Any], item: Any) -> int | str:
    """Where `item` sits in `container` (looked up only once a limit is broken)."""
    keys: Any = container.keys() if type(container) is dict else range(len(container))
    found: int | str = next(key for key in keys if container[key] is item)
    return found


def _walk(value: dict[str, Any] | list[Any], depth: int) -> None:
    """Raise _Breach at the first value past a limit (recursion is safe: it stops at MAX_DEPTH).

    This visits every value of every body, so it is written for speed: text, the commonest
    value, is passed over first, and paths are worked out only after a breach.
    """
    if depth > MAX_DEPTH:
        raise _Breach(f"nests deeper than {MAX_DEPTH} levels")
    if type(value) is dict:
        if len(value) > MAX_KEYS:
            raise _Breach(f"{len(value):,} keys; an object holds at most {MAX_KEYS}")
        if value and max(map(len, value)) > MAX_KEY_LENGTH:
            raise _Breach(f"a key is longer than {MAX_KEY_LENGTH} characters")
        items: Any = value.values()
    else:
        items = value
    for item in items:
        kind = type(item)
        if kind is str:
            continue
        if kind is dict or kind is list:
            try:
                _walk(item, depth + 1)
            except _Breach as breach:
                breach.path.append(_key_of(value, item))
                raise
        elif kind is float:
            if item - item != 0:  # true only for NaN and the infinities
                raise _Breach("must be a finite number (NaN and Infinity are not JSON)", _key_of(value, item))
        elif kind is int and not -MAX_INTEGER <= item <= MAX_INTEGER:
            raise _Breach("integers must fit in 64 bits", _key_of(value, item))


def check(value: Any, prefix: str = "") -> None:
    """Raise ValidationFailed naming the first place `value` breaks a limit of any JSON body."""
    if type(value) is not dict and type(value) is not list:
        if type(value) is float and not math.isfinite(value):
            raise ValidationFailed("the body breaks a limit", {prefix or "body": "must be a finite number"})
        return
    try:
        _walk(value, 1)
    except _Breach as breach:
        path = field_path(tuple(reversed(breach.path)), prefix)
        raise ValidationFailed(f"{path} {breach.problem}", {path: breach.problem}) from None


def loads(raw: bytes) -> Any:
    """Parse a JSON body and check its limits: MalformedJson if it does not parse, else ValidationFailed.

    The strict parser refuses NaN and Infinity tokens and stops at 200 levels without recursing
    in Python. Only when it refuses a body is the permissive standard parser tried, so that a
    non-finite number or deep nesting is answered with the path of the field at fault.
    """
    try:
        value = pydantic_core.from_json(raw, allow_inf_nan=False)
    except ValueError as strict_error:
        try:
            lax = json.loads(raw)
        except RecursionError:
            raise ValidationFailed(
                f"the body nests deeper than {MAX_DEPTH} levels", {"body": f"nests deeper than {MAX_DEPTH} levels"}
            ) from None
        except (ValueError, UnicodeDecodeError):
            raise MalformedJson(f"the body is not valid JSON: {strict_error}", {"body": "is not valid JSON"}) from None
        check(lax)
        # Valid to the standard parser and within every limit: refused for another reason (a lone surrogate).
        raise MalformedJson(f"the body is not valid JSON: {strict_error}", {"body": "is not valid JSON"}) from None
    check(value)
    return value


_STORED = json.JSONEncoder(allow_nan=False)  # built once: json.dumps with an option builds one per call


def dumps(value: Any) -> str:
    """JSON text for storage; ValueError for NaN or infinity, which no JSON reader accepts."""
    return _STORED.encode(value)


def encoded_size(value: Any) -> int:
    """Bytes of `value` as compact UTF-8 JSON."""
    return len(pydantic_core.to_json(value))


def finite_or_none(value: Any) -> Any:
    """A copy of a stored JSON value with NaN, infinities and integers past 64 bits as null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool):
        return value if -MAX_INTEGER <= value <= MAX_INTEGER else None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite_or_none(v) for v in value]
    return value
