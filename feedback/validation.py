"""Turn pydantic validation into `ValidationFailed` errors that name each bad field."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from feedback.errors import ValidationFailed

M = TypeVar("M", bound=BaseModel)


def field_path(loc: tuple[int | str, ...], prefix: str = "") -> str:
    """`('explanation', 'factors', 0, 'name')` -> `explanation.factors[0].name`."""
    path = prefix
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or "body"


# How pydantic names the member of a union (text, number, …) that a value failed as.
UNION_MEMBERS = {"str", "constrained-str", "int", "float", "bool", "none"}


def error_fields(exc: ValidationError, prefix: str = "") -> dict[str, str]:
    """Map each failing field of a pydantic error to a readable message (a union's members under one name)."""
    fields: dict[str, str] = {}
    for err in exc.errors(include_url=False):
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function")))
        while len(loc) > 1 and loc[-1] in UNION_MEMBERS:
            loc = loc[:-1]
        path, message = field_path(loc, prefix), err["msg"]
        fields[path] = message if path not in fields or message in fields[path] else f"{fields[path]}; {message}"
    return fields


def parse(schema: type[M], data: Any) -> M:
    """Validate one object or raise ValidationFailed naming its bad fields."""
    if not isinstance(data, dict):
        raise ValidationFailed("expected a JSON object", {"body": "must be a JSON object"})
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise ValidationFailed("the request has invalid fields", error_fields(exc)) from None


def parse_batch(schema: type[M], data: Any, *, max_items: int) -> tuple[list[M], bool]:
    """Validate an object or an array of objects; return the items and whether it was an array."""
    if isinstance(data, dict):
        return [parse(schema, data)], False
    if not isinstance(data, list):
        raise ValidationFailed("expected a JSON object or array", {"body": "must be an object or array"})
    if not data:
        raise ValidationFailed("the batch is empty", {"body": "must hold at least one item"})
    if len(data) > max_items:
        raise ValidationFailed(
            f"a batch holds at most {max_items} items",
            {"body": f"{len(data)} items; at most {max_items} are accepted"},
        )
    items: list[M] = []
    fields: dict[str, str] = {}
    for index, raw in enumerate(data):
        if not isinstance(raw, dict):
            fields[f"[{index}]"] = "must be a JSON object"
            continue
        try:
            items.append(schema.model_validate(raw))
        except ValidationError as exc:
            fields.update(error_fields(exc, f"[{index}]"))
    if fields:
        raise ValidationFailed(
            f"{len({k.split(']')[0] for k in fields})} item(s) are invalid; nothing was stored",
            fields,
        )
    return items, True
