"""OpenAPI 3.1 document built from the pydantic schemas that validate the requests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from feedback.params import Param
from feedback.schemas import ErrorOut

F = TypeVar("F", bound=Callable[..., Any])
REF = "#/components/schemas/{model}"
PATH_SCHEMAS = {
    "id": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    "key": {"type": "string", "pattern": r"^[\w.:-]{1,64}$"},
}


@dataclass
class Operation:
    """One documented API operation."""

    method: str
    path: str
    summary: str
    body: type[BaseModel] | None = None
    batch: int = 0
    responses: dict[int, tuple[str, type[BaseModel] | None]] = field(default_factory=dict)
    path_params: dict[str, str] = field(default_factory=dict)
    query: Sequence[Param] = ()


OPERATIONS: list[Operation] = []


def documented(
    method: str,
    path: str,
    summary: str,
    *,
    body: type[BaseModel] | None = None,
    batch: int = 0,
    responses: dict[int, tuple[str, type[BaseModel] | None]],
    path_params: dict[str, str] | None = None,
    query: Sequence[Param] = (),
) -> Callable[[F], F]:
    """Record a view's contract (`batch` > 0: the body may also be an array of that many).

    `query` is the same list of parameters the view parses with `feedback.params.parse_params`.
    """

    def decorator(view: F) -> F:
        OPERATIONS.append(Operation(method, path, summary, body, batch, responses, path_params or {}, query))
        return view

    return decorator


def _ref(model: type[BaseModel]) -> dict[str, str]:
    """Reference to a component schema."""
    return {"$ref": REF.format(model=model.__name__)}


def build_document() -> dict[str, Any]:
    """The whole OpenAPI document."""
    used: set[tuple[type[BaseModel], str]] = {(ErrorOut, "serialization")}
    for op in OPERATIONS:
        if op.body:
            used.add((op.body, "validation"))
        used.update((m, "serialization") for _, m in op.responses.values() if m)
    _, top = models_json_schema(sorted(used, key=lambda p: p[0].__name__), ref_template=REF)
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        operation: dict[str, Any] = {
            "summary": op.summary,
            "operationId": f"{op.method}_{op.path}".replace("/", "_").replace("{", "").replace("}", ""),
            "security": [{"bearerAuth": []}],
            "responses": {},
        }
        if op.path_params:
            operation["parameters"] = [
                {"name": name, "in": "path", "required": True, "schema": PATH_SCHEMAS[kind]}
                for name, kind in op.path_params.items()
            ]
        if op.query:
            operation.setdefault("parameters", []).extend(param.openapi() for param in op.query)
        if op.body:
            schema: dict[str, Any] = _ref(op.body)
            if op.batch:
                schema = {
                    "oneOf": [schema, {"type": "array", "items": _ref(op.body), "minItems": 1, "maxItems": op.batch}]
                }
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
        responses = dict(op.responses)
        # What any route can answer, besides its own statuses.
        responses.setdefault(400, ("text with NUL characters, or malformed JSON", ErrorOut))
        responses.setdefault(401, ("missing or invalid bearer token", ErrorOut))
        responses.setdefault(
            503, ("the database is briefly unavailable; nothing was saved (see Retry-After)", ErrorOut)
        )
        named = sorted({p.refers for p in op.query if p.refers})
        if op.path_params or named:
            responses.setdefault(404, ("no such " + (" or ".join(named) or "object"), ErrorOut))
        if op.query or op.body:
            responses.setdefault(422, ("invalid parameters or fields, each named", ErrorOut))
        if op.body:
            responses.setdefault(413, ("body too large", ErrorOut))
            responses.setdefault(415, ("body is not application/json", ErrorOut))
        for status, (description, model) in sorted(responses.items()):
            entry: dict[str, Any] = {"description": description}
            if model:
                entry["content"] = {"application/json": {"schema": _ref(model)}}
            operation["responses"][str(status)] = entry
        paths.setdefault(op.path, {})[op.method] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "Countersign API", "version": "1"},
        "servers": [{"url": "/"}],
        "paths": paths,
        "components": {
            "schemas": top.get("$defs", {}),
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }
