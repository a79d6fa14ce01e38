"""Request and response schemas of exceptions."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
    Field,
)

from feedback.schemas.types import PERSON, Key, Strict, Text2000


class ExceptionResolveIn(Strict):
    """Close an exception with the final action."""

    final_action: Key
    note: Text2000 = ""


class ExceptionOut(BaseModel):
    """An exception as stored."""

    id: int
    recommendation_id: int
    external_id: str
    model: str
    site: str
    kind: str
    severity: str
    reason: str
    status: str
    opened_at: datetime
    sla_due_at: datetime
    assignee: str | None = Field(description=PERSON)
    resolved_at: datetime | None
    resolution_action: str | None
    resolution_note: str


class ExceptionListOut(BaseModel):
    """A page of exceptions."""

    items: list[ExceptionOut]
