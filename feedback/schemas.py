"""Request and response schemas of the JSON API.

The same pydantic models validate requests and generate `/api/v1/openapi.json`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from feedback.models import DECISION_ACTIONS, STAGES

Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Scalar = str | int | float | bool | None

Stage = Literal[STAGES]  # type: ignore[valid-type]
DecisionAction = Literal[DECISION_ACTIONS]  # type: ignore[valid-type]


class Strict(BaseModel):
    """Input schema: unknown fields are errors, NaN and infinity are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class ReasonCodeIn(Strict):
    """A reason a reviewer may give for overriding the model."""

    code: Key
    label: Text200


class ModelIn(Strict):
    """Register a decision model."""

    key: Key
    name: Text200
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    actions: list[Key] = Field(min_length=2, max_length=50)
    reason_codes: list[ReasonCodeIn] = Field(min_length=1, max_length=100)


class ModelVersionIn(Strict):
    """Register a version of a model."""

    version: Key
    stage: Stage = "pilot"
    notes: Annotated[str, StringConstraints(max_length=2000)] = ""


class FactorIn(Strict):
    """One factor of an explanation and its signed contribution to the recommendation."""

    name: Text200
    value: Scalar = None
    contribution: float


class ExplanationIn(Strict):
    """The model's explanation of a recommendation."""

    summary: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]
    factors: list[FactorIn] = Field(default_factory=list, max_length=50)


class RecommendationIn(Strict):
    """One AI recommendation for one case, as sent by a model service."""

    model: Key
    model_version: Key
    external_id: Text200
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    site: Text200
    segment: dict[str, Scalar] = Field(default_factory=dict)
    recommended_action: Key
    confidence: float = Field(ge=0, le=1)
    explanation: ExplanationIn
    features: dict[str, Any] | None = None
    due_at: AwareDatetime | None = None


class DecisionIn(Strict):
    """A human countersignature on a recommendation."""

    action: DecisionAction
    final_action: Key | None = None
    reason_code: Key | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class ReasonCodeOut(BaseModel):
    """A reason code as stored."""

    code: str
    label: str


class ModelVersionOut(BaseModel):
    """A model version as stored."""

    id: int
    version: str
    stage: str
    notes: str
    created_at: datetime


class ModelOut(BaseModel):
    """A model as stored, with its versions."""

    id: int
    key: str
    name: str
    description: str
    actions: list[str]
    reason_codes: list[ReasonCodeOut]
    versions: list[ModelVersionOut]


class ModelListOut(BaseModel):
    """Every registered model."""

    items: list[ModelOut]


class IngestedItem(BaseModel):
    """Where one ingested recommendation was stored, and whether it was new."""

    id: int
    external_id: str
    created: bool


class IngestOut(BaseModel):
    """Answer to a batch ingest (a single-object ingest answers one IngestedItem)."""

    items: list[IngestedItem]


class DecisionOut(BaseModel):
    """A decision as stored."""

    id: int
    recommendation_id: int
    reviewer: str
    action: str
    final_action: str | None
    reason_code: str | None
    note: str
    ai_shown: bool
    channel: str
    opened_at: datetime
    decided_at: datetime


class RecommendationOut(BaseModel):
    """A recommendation as stored, with its decision if any."""

    id: int
    model: str
    model_version: str
    external_id: str
    subject: str
    site: str
    segment: dict[str, Scalar]
    recommended_action: str
    confidence: float
    explanation: dict[str, Any]
    features: dict[str, Any] | None
    status: str
    created_at: datetime
    due_at: datetime | None
    claimed_by: str | None
    claim_expires_at: datetime | None
    decision: DecisionOut | None


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a sentence, and the fields at fault."""

    code: str
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody
