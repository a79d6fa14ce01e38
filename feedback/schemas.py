"""Request and response schemas of the JSON API.

The same pydantic models validate requests and generate `/api/v1/openapi.json`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    RootModel,
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


def _text(max_length: int, min_length: int = 0, strip: bool = True) -> StringConstraints:
    """Length bounds of a string, stripped of outer whitespace unless `strip` is false."""
    return StringConstraints(strip_whitespace=strip, min_length=min_length, max_length=max_length)


Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
Text200 = Annotated[str, _text(200, min_length=1), NoNul(nonblank=True)]
Text100 = Annotated[str, _text(100, min_length=1), NoNul(nonblank=True)]  # sites and sources: 100 characters stored
Subject = Annotated[str, _text(500, min_length=1), NoNul(nonblank=True)]
Text2000 = Annotated[str, _text(2000), NoNul()]
Message = Annotated[str, _text(2000, min_length=1), NoNul(nonblank=True)]
Notes2000 = Annotated[str, _text(2000, strip=False), NoNul()]
Email = Annotated[str, _text(254, strip=False), NoNul()]
Notes4000 = Annotated[str, _text(4000, strip=False), NoNul()]
Notes10k = Annotated[str, _text(10_000, strip=False), NoNul()]
SegmentText = Annotated[str, _text(limits.SEGMENT_VALUE_MAX_LENGTH), NoNul()]


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
Draws = Annotated[int, Field(ge=99, le=9999), BeforeValidator(_whole_number)]


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


class ReasonCodeIn(Strict):
    """A reason a reviewer may give for overriding the model."""

    code: Key
    label: Text200


class SegmentLabelsIn(Strict):
    """The model's words for one segment attribute and, where its values are codes, for those values."""

    label: Text200
    values: dict[Annotated[str, _text(limits.SEGMENT_VALUE_MAX_LENGTH, 1, strip=False), NoNul()], Text200] = Field(
        default_factory=dict,
        max_length=200,
        description='Labels of values that are codes, keyed by the value as text (`"1k_10k"`, `"true"`).',
        json_schema_extra={"additionalProperties": False},
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
    """Register a version of a model."""

    version: Key
    stage: Stage = "pilot"
    notes: Notes2000 = ""


class FactorIn(Strict):
    """One factor of an explanation and its signed contribution to the recommendation."""

    name: Text200
    value: ScalarIn = None
    contribution: float


class ExplanationIn(Strict):
    """The model's explanation of a recommendation."""

    summary: Text2000
    factors: list[FactorIn] = Field(default_factory=list, max_length=50)


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


NONBLANK = r"^[^\u0000]*[^\s\u0000][^\u0000]*$"


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


class VersionRulesIn(Strict):
    """Rules that route a version's cases to the exceptions queue."""

    min_confidence: float | None = Field(default=None, ge=0, le=1)
    policy_flags: list[Key] = Field(default_factory=list, max_length=50)
    required_features: list[Text200] = Field(default_factory=list, max_length=100)
    audit_sample_rate: float = Field(default=0.0, ge=0, le=1)


class OutcomeIn(Strict):
    """What later turned out to be true for a case: a label from the model's actions, or a number.

    Name the case by `recommendation_id`, or by `model` and `external_id`: one way, not both.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {
                    "required": ["recommendation_id"],
                    "properties": {
                        "recommendation_id": {"type": "integer"},
                        "model": {"type": "null"},
                        "external_id": {"type": "null"},
                    },
                },
                {
                    "required": ["model", "external_id"],
                    "properties": {
                        "recommendation_id": {"type": "null"},
                        "model": {"type": "string"},
                        "external_id": {"type": "string"},
                    },
                },
            ]
        }
    )

    recommendation_id: RowId | None = None
    model: Key | None = None
    external_id: Text200 | None = None
    outcome: Key | float
    observed_at: Timestamp
    source: Text100


class ExceptionResolveIn(Strict):
    """Close an exception with the final action."""

    final_action: Key
    note: Text2000 = ""


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


class OutcomeStored(BaseModel):
    """Where one outcome is stored and whether this call created it."""

    id: int
    recommendation_id: int
    source: str
    created: bool


class OutcomesOut(BaseModel):
    """Answer to an outcomes batch (a single object answers one OutcomeStored)."""

    items: list[OutcomeStored]


class OutcomesAnswer(RootModel[OutcomesOut | OutcomeStored]):
    """A batch's OutcomesOut, or one OutcomeStored for a single object."""


class ResolutionRow(BaseModel):
    """Time to resolve exceptions in one group (hours; a percentile the data cannot reach is null)."""

    key: str
    n: int
    resolved: int
    censored: int
    median_hours: float | None
    median_ci_low: float | None
    median_ci_high: float | None
    p90_hours: float | None
    p90_ci_low: float | None
    p90_ci_high: float | None
    sla_breach_rate: float | None
    sla_breach_ci_low: float | None
    sla_breach_ci_high: float | None
    sla_known_breaches: int


class ResolutionOut(BaseModel):
    """Resolution-time statistics by kind, severity or site."""

    rows: list[ResolutionRow]


class OverrideRow(BaseModel):
    """Override counts and rate (with its Wilson 95% interval) for one group."""

    key: str
    decisions: int
    accepts: int
    overrides: int
    escalations: int
    override_rate: float | None
    ci_low: float | None
    ci_high: float | None
    escalation_rate: float | None
    vs_rest_difference: float | None = None
    vs_rest_ci_low: float | None = None
    vs_rest_ci_high: float | None = None
    vs_rest_p: float | None = None


class OverridesOut(BaseModel):
    """Override rates by a dimension, and for the whole window."""

    rows: list[OverrideRow]
    total: OverrideRow


class ComparisonOut(BaseModel):
    """Two override rates compared: difference with Newcombe's interval and the p-value of the test it inverts."""

    a: str
    b: str
    rate_a: float
    rate_b: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float


class RowsOut(BaseModel):
    """A table of numbers as rows."""

    rows: list[dict[str, Any]]


class AlertOut(BaseModel):
    """A guardrail breach."""

    id: int
    model_version: str
    opened_at: datetime
    value: float | None
    message: str
    status: str
    paused_from: str | None


class AlertListOut(BaseModel):
    """Alerts, newest first."""

    items: list[AlertOut]


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


class ErrorBody(BaseModel):
    """What went wrong: a stable code, a sentence, and the fields at fault."""

    code: str
    message: str
    fields: dict[str, str] = Field(default_factory=dict)


class ErrorOut(BaseModel):
    """Every API error has this shape."""

    error: ErrorBody


class RolloutSiteIn(Strict):
    """A site's go-live (null: a comparison site that stays unaided)."""

    site: Text100
    go_live: Timestamp | None = None


class ExperimentIn(Strict):
    """A new experiment, created as a draft.

    A staggered rollout lists its sites, at least one with a go-live date; a site listed twice is a 409
    (`repeated_in_request`) naming the field.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"properties": {"kind": {"const": "ab"}}},
                {
                    "required": ["sites"],
                    "properties": {
                        "kind": {"const": "staggered"},
                        "sites": {
                            "minItems": 1,
                            "contains": {"required": ["go_live"], "properties": {"go_live": {"type": "string"}}},
                        },
                    },
                },
            ]
        }
    )

    key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Text200
    model: Key
    kind: Literal["ab", "staggered"]
    unit: Literal["case", "reviewer", "site"] = "case"
    ai_weight: float = Field(0.5, gt=0, lt=1)
    hypothesis: Notes4000 = ""
    sites: list[RolloutSiteIn] = Field(default_factory=list, max_length=1000)


class RolloutSiteOut(BaseModel):
    """A site of a staggered rollout and when it goes live."""

    site: str
    go_live: datetime | None


class ArmOut(BaseModel):
    """How many units an arm has seen."""

    arm: str
    units: int
    exposures: int


class ExperimentOut(BaseModel):
    """An experiment, its schedule and its exposures so far."""

    id: int
    key: str
    name: str
    model: str
    kind: str
    unit: str
    ai_weight: float
    status: str
    started_at: datetime | None
    stopped_at: datetime | None
    sites: list[RolloutSiteOut]
    arms: list[ArmOut]


class ExperimentListOut(BaseModel):
    """Experiments, newest first."""

    items: list[ExperimentOut]


class AnalysisIn(Strict):
    """How to analyse a staggered-rollout panel."""

    control: Literal["never", "not_yet"] = "not_yet"
    method: Literal["dr", "reg", "ipw"] = "dr"
    covariates: list[Key] = Field(default_factory=list, max_length=50)
    draws: Draws = 999


class AnalysisOut(BaseModel):
    """An analysis run: poll until `status` is done or failed; `result` holds every table.

    A staggered rollout's `result.warnings` lists what the estimator dropped, recoded or left out
    (cohorts without a comparison, units treated from the first period, cells without overlap).
    """

    id: int
    kind: str
    status: str
    progress: float
    message: str
    attempts: int  # worker attempts taken; a job that fails them all ends "failed after N attempts"
    interrupted: bool
    result: dict[str, Any] | None


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
