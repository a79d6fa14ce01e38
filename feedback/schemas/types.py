"""The field types every API schema is built from: bounded text, ids, keys, scalars, and the strict base."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from feedback import json_input as limits
from feedback.models import DECISION_ACTIONS, STAGES
from feedback.params import Moment

MAX_ID = 2**31 - 1  # the largest INTEGER, the type of every id column: a larger id cannot name a row


class NoNul:
    """Shows in the schema that text may not hold NUL characters (the server refuses them before parsing),
    and, for text that must not be blank, that it needs a character other than whitespace."""

    def __init__(self, nonblank: bool = False) -> None:
        self.nonblank = nonblank

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        """Add the pattern unless the string already has a stricter one."""
        out = handler(schema)
        out.setdefault("pattern", r"^[^\u0000]*[^\s\u0000][^\u0000]*$" if self.nonblank else r"^[^\u0000]*$")
        return out


def raw_length(max_length: int) -> BeforeValidator:
    """The length bound on the text as sent, before stripping: what the schema's maxLength promises.

    Put it after `bounded_text` in `Annotated`: it then wraps the stripping and checks the raw text.
    """

    def check(value: Any) -> Any:
        if isinstance(value, str) and len(value) > max_length:
            raise ValueError(f"String should have at most {max_length} characters")
        return value

    return BeforeValidator(check)


def bounded_text(max_length: int, min_length: int = 0, strip: bool = True) -> StringConstraints:
    """Length bounds of a string, stripped of outer whitespace unless `strip` is false."""
    return StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length)


Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]


Text200 = Annotated[str, bounded_text(200, min_length=1), raw_length(200), NoNul(nonblank=True)]


Text100 = Annotated[
    str, bounded_text(100, min_length=1), raw_length(100), NoNul(nonblank=True)
]  # sites and sources: 100 characters stored


Subject = Annotated[str, bounded_text(500, min_length=1), raw_length(500), NoNul(nonblank=True)]


Text2000 = Annotated[str, bounded_text(2000), raw_length(2000), NoNul()]


Message = Annotated[str, bounded_text(2000, min_length=1), raw_length(2000), NoNul(nonblank=True)]


Notes2000 = Annotated[str, bounded_text(2000, strip=False), NoNul()]


Email = Annotated[str, bounded_text(254, strip=False), NoNul()]


Notes4000 = Annotated[str, bounded_text(4000, strip=False), NoNul()]


Notes10k = Annotated[str, bounded_text(10_000, strip=False), NoNul()]


SegmentText = Annotated[
    str, bounded_text(limits.SEGMENT_VALUE_MAX_LENGTH), raw_length(limits.SEGMENT_VALUE_MAX_LENGTH), NoNul()
]


def _whole_number(value: Any) -> Any:
    """A float with no fraction (495.0) is the integer JSON Schema says it is; anything else goes on unchanged
    to the strict integer check, which refuses `true`, `"5"` and 495.5."""
    if type(value) is float and value.is_integer():
        return int(value)
    return value


# Every integer of every body: JSON Schema's "integer" holds 495.0 too, so the server must take it.
# Each is an int with its bounds, then the validator (bounds after it show in the JSON schema as "ge"/"le",
# which no client reads).
RowId = Annotated[int, Field(ge=1, le=MAX_ID), BeforeValidator(_whole_number)]


MIN_DRAWS, MAX_DRAWS = 99, 9999  # bootstrap draws: fewer give ragged bands, more only cost time
Draws = Annotated[int, Field(ge=MIN_DRAWS, le=MAX_DRAWS), BeforeValidator(_whole_number)]


# ISO 8601 text in JSON (so not strict: strict would take only Python datetimes), bounded like the
# query strings' dates; a bare number, which lax parsing would read as a Unix time, is refused.
Timestamp = Annotated[Moment, Field(strict=False)]


Scalar = str | int | float | bool | None  # as stored and answered


ScalarIn = Text2000 | int | float | bool | None


SegmentKey = Annotated[str, StringConstraints(pattern=limits.SEGMENT_KEY_PATTERN)]


SegmentValue = SegmentText | int | float | bool | None


def _features_size(value: dict[str, Any] | None) -> dict[str, Any] | None:
    """Refuse features whose JSON is larger than FEATURES_MAX_BYTES."""
    if value is not None and (size := limits.encoded_size(value)) > limits.FEATURES_MAX_BYTES:
        raise ValueError(f"{size:,} bytes as JSON; at most {limits.FEATURES_MAX_BYTES:,} are accepted")
    return value


Features = Annotated[
    dict[str, Any] | None,
    AfterValidator(_features_size),
    Field(
        description=(
            "Free-form model inputs, exported as columns. At most "
            f"{limits.FEATURES_MAX_BYTES:,} bytes as compact JSON, {limits.MAX_KEYS} keys per object, "
            f"keys up to {limits.MAX_KEY_LENGTH} characters, nested within the body's {limits.MAX_DEPTH} levels; "
            "numbers finite, integers within 64 bits."
        ),
        json_schema_extra={
            "maxProperties": limits.MAX_KEYS,
            "propertyNames": {"maxLength": limits.MAX_KEY_LENGTH, "pattern": r"^[^\u0000]*$"},
            "x-maxBytes": limits.FEATURES_MAX_BYTES,
            "x-maxDepth": limits.MAX_DEPTH - 1,
        },
    ),
]


def _body_limits(schema: dict[str, Any]) -> None:
    """Name the limits every JSON body obeys (checked in feedback.json_input before the schema)."""
    schema["x-bodyLimits"] = {
        "maxDepth": limits.MAX_DEPTH,
        "maxPropertiesPerObject": limits.MAX_KEYS,
        "maxKeyLength": limits.MAX_KEY_LENGTH,
        "numbers": "finite (no NaN or Infinity); integers within 64 bits",
        "text": "no NUL characters",
    }


Stage = Literal[STAGES]  # type: ignore[valid-type]


DecisionAction = Literal[DECISION_ACTIONS]  # type: ignore[valid-type]


# People are personal data: the API names them only to those who may see who they are.
PERSON = (
    "e-mail for admins and for the person themself (exception handlers also see handlers' and admins'); "
    "otherwise a stable pseudonym such as 'Reviewer 7KQ2M9'"
)


class Strict(BaseModel):
    """Input schema: unknown fields are errors, types are strict (no `true` or `"0.5"` for a number)."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, json_schema_extra=_body_limits)


NONBLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


class RowsOut(BaseModel):
    """A table of numbers as rows."""

    rows: list[dict[str, Any]]


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a sentence, and the fields at fault."""

    code: str
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody
