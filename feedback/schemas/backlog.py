"""Request and response schemas of the retraining backlog."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
)

from feedback.schemas.types import Email, Notes10k, RowId, Strict


class BacklogItemOut(BaseModel):
    """A retraining backlog item: a credible over-override pattern of one model version."""

    id: int
    model: str | None
    model_version: str | None
    pattern: str
    conditions: list[dict[str, Any]]
    title: str
    cases: int
    overrides: int
    rate: float
    rate_low: float
    rate_high: float
    baseline: float
    ratio: float | None
    excess_overrides: float
    q_value: float
    ai_wrong_share: float
    priority: float
    top_final_action: str | None
    top_reason: str | None
    active: bool
    status: str
    owner: str | None
    notes: str
    verified_by_version: str | None
    row_version: int
    refreshed_at: str


class BacklogListOut(BaseModel):
    """Backlog items, ranked."""

    items: list[BacklogItemOut]


class BacklogPatchIn(Strict):
    """Change an item: status, owner (e-mail; empty string for nobody), notes; row_version guards lost updates."""

    status: Literal["new", "triaged", "planned", "in_training", "shipped", "verified", "dismissed"] | None = None
    owner: Email | None = None
    notes: Notes10k | None = None
    row_version: RowId | None = None


class RefreshOut(BaseModel):
    """What a backlog refresh changed."""

    created: int
    updated: int
    retired: int
