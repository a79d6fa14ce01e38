"""Request and response schemas of ingest and decisions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
)

from feedback import json_input as limits
from feedback.schemas.types import (
    NONBLANK,
    PERSON,
    DecisionAction,
    Features,
    Key,
    Message,
    Scalar,
    ScalarIn,
    SegmentKey,
    SegmentValue,
    Strict,
    Subject,
    Text100,
    Text200,
    Text2000,
    Timestamp,
)


class FactorIn(Strict):
    """One factor of an explanation and its signed contribution to the recommendation."""

    name: Text200
    value: ScalarIn = None
    contribution: float


class ExplanationIn(Strict):
    """The model's explanation of a recommendation."""

    summary: Text2000
    factors: list[FactorIn] = Field(default_factory=list, max_length=50)


class ChallengerIn(Strict):
    """A shadow recommendation of another version of the case's model; reviewers never see it."""

    model_version: Key
    recommended_action: Key
    confidence: float = Field(ge=0, le=1)
    explanation: ExplanationIn


class RecommendationIn(Strict):
    """One AI recommendation for one case, as sent by a model service.

    `recommended_action`, `confidence` and `explanation` are required, unless the model failed:
    then it sends `error` instead of the action and confidence, and the case goes to a person
    with no AI proposal.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["recommended_action", "confidence", "explanation"],
                    "properties": {
                        "recommended_action": {"type": "string"},
                        "confidence": {"type": "number"},
                        "explanation": {"type": "object"},
                        "error": {"type": "null"},
                    },
                },
                {
                    "required": ["error"],
                    "properties": {
                        "error": {"type": "string"},
                        "recommended_action": {"type": "null"},
                        "confidence": {"type": "null"},
                    },
                },
            ]
        }
    )

    model: Key
    model_version: Key
    external_id: Text200
    subject: Subject
    site: Text100
    segment: dict[SegmentKey, SegmentValue] = Field(
        default_factory=dict,
        max_length=limits.SEGMENT_MAX_KEYS,
        description=(
            f"Attributes to break overrides down by: at most {limits.SEGMENT_MAX_KEYS}, named like "
            f"{limits.SEGMENT_KEY_PATTERN}, text values up to {limits.SEGMENT_VALUE_MAX_LENGTH} characters."
        ),
        json_schema_extra={"propertyNames": {"pattern": limits.SEGMENT_KEY_PATTERN}, "additionalProperties": False},
    )
    recommended_action: Key | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    explanation: ExplanationIn | None = None
    features: Features = None
    flags: list[Key] = Field(default_factory=list, max_length=20)
    error: Message | None = None
    due_at: Timestamp | None = None
    challengers: list[ChallengerIn] = Field(
        default_factory=list,
        max_length=20,
        description="shadow recommendations of other versions of the same model, never shown to reviewers",
    )


class DecisionIn(Strict):
    """A human countersignature on a recommendation.

    An override names its final action; an escalation has none and says why (a note, a reason code or
    both). What the stored
    case allows (its model's actions and reason codes, whether the AI was shown) is a 409 naming the field.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"action": {"const": "accept"}}},
                {
                    "required": ["final_action"],
                    "properties": {"action": {"const": "override"}, "final_action": {"type": "string"}},
                },
                {
                    "required": ["reason_code"],
                    "properties": {
                        "action": {"const": "escalate"},
                        "final_action": {"type": "null"},
                        "reason_code": {"type": "string"},
                    },
                },
                {
                    "required": ["note"],
                    "properties": {
                        "action": {"const": "escalate"},
                        "final_action": {"type": "null"},
                        "note": {"type": "string", "pattern": NONBLANK},
                    },
                },
            ]
        }
    )

    action: DecisionAction
    final_action: Key | None = None
    reason_code: Key | None = None
    note: Text2000 = ""


class IngestedItem(BaseModel):
    """Where one ingested recommendation was stored, and whether it was new."""

    id: int
    external_id: str
    created: bool


class IngestOut(BaseModel):
    """Answer to a batch ingest (a single-object ingest answers one IngestedItem)."""

    items: list[IngestedItem]


class IngestAnswer(RootModel[IngestOut | IngestedItem]):
    """A batch's IngestOut, or one IngestedItem for a single object."""


class DecisionOut(BaseModel):
    """A decision as stored."""

    id: int
    recommendation_id: int
    reviewer: str = Field(description=PERSON)
    action: str
    final_action: str | None
    reason_code: str | None
    note: str
    ai_shown: bool
    channel: str
    opened_at: datetime
    decided_at: datetime
    quick: bool = Field(
        description="decided on the review screen less than 2 seconds after the case was opened: "
        "too quick to have read it"
    )


class RecommendationOut(BaseModel):
    """A recommendation as stored, with its decision if any."""

    id: int
    model: str
    model_version: str
    external_id: str
    subject: str
    site: str
    segment: dict[str, Scalar]
    recommended_action: str | None = Field(description="null when the model sent an error instead")
    confidence: float | None = Field(description="null when the model sent an error instead")
    explanation: dict[str, Any]
    features: dict[str, Any] | None
    status: str
    created_at: datetime
    due_at: datetime | None
    claimed_by: str | None = Field(description=PERSON)
    claim_expires_at: datetime | None
    decision: DecisionOut | None
