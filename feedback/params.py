"""Strict parsing of query strings and form fields, and the OpenAPI schema of each parameter.

Every page, form and API route declares its parameters with the constructors below and parses
them with `parse_params`. The same declaration documents an API parameter, so what the server
accepts and what `/api/v1/openapi.json` says cannot drift apart. Patterns follow ECMA-262 (the
reading of JSON Schema validators): ASCII digits and word characters, `$` only at the very end.

A blank value (`name=`) means the parameter was not given: HTML forms send blank selects and inputs.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AwareDatetime, BeforeValidator, WithJsonSchema

from feedback.errors import ValidationFailed

MAX_ID = 2**31 - 1  # ids are INTEGER columns: a larger number cannot name a row
MAX_PAGE = 10_000  # pages of a list; deeper than this, filter instead
FIRST_DAY, LAST_DAY = date(1970, 1, 1), date(2199, 12, 31)  # far from the limits of date arithmetic

_YEAR = r"(?:19[7-9][0-9]|2[01][0-9][0-9])"
_LEAP_YEAR = r"(?:19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26])|21(?:0[48]|[2468][048]|[13579][26]))"
_MONTH_DAY = r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
DATE = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_YEAR}-02-29)"  # exactly the real days from FIRST_DAY to LAST_DAY
_HOUR, _MINUTE = r"(?:[01][0-9]|2[0-3])", r"[0-5][0-9]"
TIME = rf"T{_HOUR}:{_MINUTE}(?::{_MINUTE}(?:\.[0-9]{{1,6}})?)?(?:Z|[+-]{_HOUR}:{_MINUTE})?"
KEY = r"[A-Za-z0-9_.:-]{1,64}"  # model keys and version names
TRUE, FALSE = ("1", "true", "on", "yes"), ("0", "false", "off", "no")
_NUMBER = re.compile(r"-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]{1,3})?", re.ASCII)


MOMENT = rf"{DATE}T{_HOUR}:{_MINUTE}(?::{_MINUTE}(?:\.[0-9]{{1,6}})?)?(?:Z|[+-]{_HOUR}:{_MINUTE})"


def _moment_text(value: Any) -> Any:
    """A JSON timestamp is a string in MOMENT's shape (no numbers, no year 1 or 9999), or a datetime from Python."""
    if isinstance(value, datetime) and FIRST_DAY <= value.date() <= LAST_DAY:
        return value
    if not isinstance(value, str) or not re.fullmatch(MOMENT, value, re.ASCII):
        raise ValueError(f"must be an ISO timestamp with a time zone, from {FIRST_DAY} to {LAST_DAY}")
    return value


# An aware timestamp in a JSON body, bounded like the query strings' dates and documented by its pattern.
Moment = Annotated[
    AwareDatetime, BeforeValidator(_moment_text), WithJsonSchema({"type": "string", "pattern": f"^{MOMENT}$"})
]


@dataclass(frozen=True)
class Param:
    """One query-string or form parameter: how to read it, and how to document it."""

    name: str
    kind: str  # id, int, number, day, when, choice, flag, text
    required: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    low: float = 1
    high: float = MAX_ID
    max_length: int = 200
    pattern: str | None = None
    many: bool = False
    description: str = ""
    hint: str = ""  # says what a valid value looks like, where the pattern would not
    refers: str = ""  # the kind of row the value names, if any: an unknown one is a 404

    def problem(self) -> str:
        """What a valid value looks like, said to whoever sent a bad one."""
        if self.hint:
            return self.hint
        if self.kind == "id":
            return f"must be an id: ASCII digits, from 1 to {MAX_ID}"
        if self.kind == "int":
            return f"must be a whole number from {self.low:g} to {self.high:g}"
        if self.kind == "number":
            return f"must be a number from {self.low:g} to {self.high:g}"
        if self.kind == "day":
            return f"must be a date like 2026-01-31, from {FIRST_DAY} to {LAST_DAY}"
        if self.kind == "when":
            return f"must be a date (YYYY-MM-DD) or an ISO timestamp from {FIRST_DAY} to {LAST_DAY}"
        if self.kind in ("choice", "flag"):
            return "must be one of " + ", ".join(self.choices)
        if self.pattern:
            return f"must be 1-{self.max_length} characters matching {self.pattern}"
        return f"must be at most {self.max_length} characters"

    def convert(self, raw: str) -> Any:
        """The typed value of a non-blank string; ValueError if it is not one."""
        return _CONVERTERS.get(self.kind, _text)(self, raw)

    def schema(self) -> dict[str, Any]:
        """The JSON Schema of the value on the wire, blank included when the parameter is optional."""
        blank_ok = not self.required
        if self.kind in ("id", "int"):
            number: dict[str, Any] = {"type": "integer", "minimum": int(self.low), "maximum": int(self.high)}
            return {"anyOf": [number, {"type": "string", "enum": [""]}]} if blank_ok else number
        if self.kind in ("choice", "flag"):
            return {"type": "string", "enum": ([""] if blank_ok else []) + list(self.choices)}
        pattern = {"day": DATE, "when": rf"{DATE}(?:{TIME})?"}.get(self.kind, self.pattern)
        if pattern:
            return {"type": "string", "pattern": f"^(?:{pattern}){'?' if blank_ok else ''}$"}
        return {"type": "string", "maxLength": self.max_length}

    def openapi(self) -> dict[str, Any]:
        """This parameter as an OpenAPI query parameter."""
        described = f"{self.description} ({self.problem()})" if self.description else self.problem()
        if self.default is not None:
            described += f"; default {str(self.default).lower() if self.kind == 'flag' else self.default}"
        return {
            "name": self.name,
            "in": "query",
            "required": self.required,
            "description": described,
            "schema": self.schema(),
        }


# One converter per kind: each takes the parameter and a non-blank string, and raises ValueError.
def _integer(param: Param, raw: str) -> int:
    if not re.fullmatch(r"-?[0-9]+" if param.kind == "int" else r"[0-9]+", raw, re.ASCII):
        raise ValueError(raw)
    if len(raw.lstrip("-").lstrip("0")) > 12:  # never hand int() a huge string
        raise ValueError(raw)
    value = int(raw)
    if not param.low <= value <= param.high:
        raise ValueError(raw)
    return value


def _number(param: Param, raw: str) -> float:
    if len(raw) > 40 or not _NUMBER.fullmatch(raw):
        raise ValueError(raw)
    number = float(raw)
    if not math.isfinite(number) or not param.low <= number <= param.high:
        raise ValueError(raw)
    return number


def _day(param: Param, raw: str) -> date:
    if not re.fullmatch(DATE, raw, re.ASCII):
        raise ValueError(raw)
    return date.fromisoformat(raw)


def _when(param: Param, raw: str) -> datetime:
    if not re.fullmatch(rf"{DATE}(?:{TIME})?", raw, re.ASCII):
        raise ValueError(raw)
    moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _choice(param: Param, raw: str) -> str:
    if raw not in param.choices:
        raise ValueError(raw)
    return raw


def _flag(param: Param, raw: str) -> bool:
    return _choice(param, raw) in TRUE


def _text(param: Param, raw: str) -> str:
    if len(raw) > param.max_length or (param.pattern and not re.fullmatch(param.pattern, raw, re.ASCII)):
        raise ValueError(raw)
    return raw


_CONVERTERS: dict[str, Callable[[Param, str], Any]] = {
    "id": _integer,
    "int": _integer,
    "number": _number,
    "day": _day,
    "when": _when,
    "choice": _choice,
    "flag": _flag,
}


def Id(name: str, *, required: bool = False, description: str = "") -> Param:  # reads as a type
    """The id of a row."""
    return Param(name, "id", required=required, description=description, refers=name)


def Int(name: str, low: int, high: int, *, default: int | None = None, required: bool = False) -> Param:
    """A whole number within [low, high]."""
    return Param(name, "int", required=required, default=default, low=low, high=high)


def Number(name: str, low: float, high: float, *, default: float | None = None) -> Param:
    """A finite decimal number within [low, high]."""
    return Param(name, "number", default=default, low=low, high=high)


def Day(name: str, *, description: str = "") -> Param:
    """A calendar date, YYYY-MM-DD."""
    return Param(name, "day", description=description)


def When(name: str, *, many: bool = False, description: str = "") -> Param:
    """A date or an ISO timestamp, as an aware datetime (a date or a naive time means UTC)."""
    return Param(name, "when", many=many, description=description)


def Choice(
    name: str, choices: Sequence[str], *, default: str | None = None, required: bool = False, many: bool = False
) -> Param:
    """One of a fixed set of words."""
    return Param(name, "choice", required=required, default=default, choices=tuple(choices), many=many)


def Flag(name: str, *, description: str = "") -> Param:
    """A yes/no switch: 1, true, on, yes or 0, false, off, no; absent means no."""
    return Param(name, "flag", default=False, choices=TRUE + FALSE, description=description)


def Text(
    name: str,
    max_length: int = 200,
    *,
    pattern: str | None = None,
    hint: str = "",
    required: bool = False,
    many: bool = False,
    description: str = "",
) -> Param:
    """Free text of bounded length, optionally matching a pattern (`hint` says which, in words)."""
    return Param(
        name,
        "text",
        required=required,
        max_length=max_length,
        pattern=pattern,
        many=many,
        description=description,
        hint=hint,
    )


KEY_HINT = "must be 1-64 letters, digits, _ . : or -"


def ModelKey(name: str = "model", *, required: bool = True) -> Param:
    """A model's key."""
    param = Text(name, 64, pattern=KEY, hint=KEY_HINT, required=required, description="the model's key")
    return replace(param, refers="model")


def Version(name: str = "version", *, required: bool = False) -> Param:
    """A model version's name."""
    param = Text(name, 64, pattern=KEY, hint=KEY_HINT, required=required, description="a version of the model")
    return replace(param, refers="version")


def _values(source: Mapping[str, Any], name: str) -> list[str]:
    """Every value given for `name` (a MultiDict keeps repeats; a plain dict has one at most)."""
    getlist = getattr(source, "getlist", None)
    if getlist is not None:
        return [str(v) for v in getlist(name)]
    value = source.get(name)
    return [] if value is None else [str(value)]


def parse_params(source: Mapping[str, Any], params: Sequence[Param]) -> dict[str, Any]:
    """Read every declared parameter, or raise ValidationFailed naming each bad one (422)."""
    values: dict[str, Any] = {}
    fields: dict[str, str] = {}
    for param in params:
        raws = _values(source, param.name)
        try:
            if param.many:
                values[param.name] = [param.convert(raw) if raw else None for raw in raws]
            elif len(raws) > 1:
                fields[param.name] = "must be given once"
            elif not raws or raws[0] == "":
                if param.required:
                    fields[param.name] = "is required: " + param.problem()
                values[param.name] = param.default
            else:
                values[param.name] = param.convert(raws[0])
        except ValueError:
            fields[param.name] = param.problem()
    if fields:
        raise ValidationFailed(f"invalid {', '.join(fields)}", fields)
    return values
