"""Request and response schemas of the model catalog."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    Field,
    StringConstraints,
)

from feedback import json_input as limits
from feedback.schemas.types import Key, NoNul, Notes2000, SegmentKey, Stage, Strict, Text200, bounded_text


class ReasonCodeIn(Strict):
    """A reason a reviewer may give for overriding the model."""

    code: Key
    label: Text200


class SegmentLabelsIn(Strict):
    """The model's words for one segment attribute and, where its values are codes, for those values."""

    label: Text200
    values: dict[Annotated[str, bounded_text(limits.SEGMENT_VALUE_MAX_LENGTH, 1, strip=False), NoNul()], Text200] = (
        Field(
            default_factory=dict,
            max_length=200,
            description='Labels of values that are codes, keyed by the value as text (`"1k_10k"`, `"true"`).',
            json_schema_extra={"additionalProperties": False},
        )
    )


class ModelIn(Strict):
    """Register a decision model.

    Labels are optional: an action or segment attribute without one is shown as its code in words
    (`raise_alert` reads "Raise alert"). Codes stay in the API and in CSV.
    """

    key: Key
    name: Text200
    description: Notes2000 = ""
    actions: list[Key] = Field(min_length=2, max_length=50, json_schema_extra={"uniqueItems": True})
    reason_codes: list[ReasonCodeIn] = Field(
        min_length=1,
        max_length=100,
        description="Each `code` at most once: a repeated code is a 409 (`repeated_in_request`) naming the field.",
        json_schema_extra={"uniqueItems": True},
    )
    action_labels: dict[Key, Text200] = Field(
        default_factory=dict,
        max_length=50,
        description="Label of each action, keyed by its code; every key must be one of `actions` (409 otherwise).",
        json_schema_extra={
            "propertyNames": {"minLength": 1, "maxLength": 64, "pattern": r"^[\w.:-]+$"},
            "additionalProperties": False,
        },
    )
    segment_labels: dict[SegmentKey, SegmentLabelsIn] = Field(
        default_factory=dict,
        max_length=50,
        description="Labels of segment attributes (and of their coded values), keyed by attribute.",
        json_schema_extra={"propertyNames": {"pattern": limits.SEGMENT_KEY_PATTERN}, "additionalProperties": False},
    )


class ModelVersionIn(Strict):
    """Register a version of a model: in shadow, until its readiness plan lets its pilot start."""

    version: Key
    stage: Stage = "shadow"
    notes: Notes2000 = ""


class VersionRulesIn(Strict):
    """Rules that route a version's cases to the exceptions queue."""

    min_confidence: float | None = Field(default=None, ge=0, le=1)
    policy_flags: list[Key] = Field(default_factory=list, max_length=50)
    required_features: list[Text200] = Field(default_factory=list, max_length=100)
    audit_sample_rate: float = Field(default=0.0, ge=0, le=1)


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
    action_labels: dict[str, str] = Field(description="Every action's label (its code in words when none was given).")
    reason_codes: list[ReasonCodeOut]
    segment_labels: dict[str, Any] = Field(description="Segment attribute labels as registered.")
    versions: list[ModelVersionOut]


class ModelListOut(BaseModel):
    """Every registered model."""

    items: list[ModelOut]


class ModelOwnersIn(Strict):
    """The complete set of a model's owners, by e-mail (an empty list leaves it to admins)."""

    owners: Annotated[
        list[Annotated[str, StringConstraints(max_length=254, pattern=r"^[^\x00-\x20@]+@[^\x00-\x20@]+$")]],
        Field(max_length=100),
    ]


class ModelOwnersOut(BaseModel):
    """Who owns a model now."""

    model: str
    owners: list[str]
