"""Request and response schemas of the JSON API.

The same pydantic models validate requests and generate `/api/v1/openapi.json`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from feedback.models import DECISION_ACTIONS, STAGES

MAX_ID = 2**31 - 1  # the largest INTEGER, the type of every id column: a larger id cannot name a row
Key = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]
Text200 = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Scalar = str | int | float | bool | None

Stage = Literal[STAGES]  # type: ignore[valid-type]
DecisionAction = Literal[DECISION_ACTIONS]  # type: ignore[valid-type]


# People are personal data: the API names them only to those who may see who they are.
PERSON = (
    "e-mail for admins and for the person themself (exception handlers also see handlers' and admins'); "
    "otherwise a stable pseudonym such as 'Reviewer 7KQ2M9'"
)


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
    """One AI recommendation for one case, as sent by a model service.

    `recommended_action`, `confidence` and `explanation` are required, unless the model failed:
    then it sends `error` instead of the action and confidence, and the case goes to a person
    with no AI proposal.
    """

    model: Key
    model_version: Key
    external_id: Text200
    subject: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    site: Text200
    segment: dict[str, Scalar] = Field(default_factory=dict)
    recommended_action: Key | None = None
    confidence: float | None = Field(default=None, ge=0, le=1)
    explanation: ExplanationIn | None = None
    features: dict[str, Any] | None = None
    flags: list[Key] = Field(default_factory=list, max_length=20)
    error: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)] | None = None
    due_at: AwareDatetime | None = None


class DecisionIn(Strict):
    """A human countersignature on a recommendation."""

    action: DecisionAction
    final_action: Key | None = None
    reason_code: Key | None = None
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] = ""


class VersionRulesIn(Strict):
    """Rules that route a version's cases to the exceptions queue."""

    min_confidence: float | None = Field(default=None, ge=0, le=1)
    policy_flags: list[Key] = Field(default_factory=list, max_length=50)
    required_features: list[Text200] = Field(default_factory=list, max_length=100)
    audit_sample_rate: float = Field(default=0.0, ge=0, le=1)


class OutcomeIn(Strict):
    """What later turned out to be true for a case: a label from the model's actions, or a number.

    Name the case by `recommendation_id`, or by `model` and `external_id`.
    """

    recommendation_id: int | None = Field(default=None, ge=1, le=MAX_ID)
    model: Key | None = None
    external_id: Text200 | None = None
    outcome: Key | float
    observed_at: AwareDatetime
    source: Text200


class ExceptionResolveIn(Strict):
    """Close an exception with the final action."""

    final_action: Key
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
    recommended_action: str
    confidence: float
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

    site: Text200
    go_live: AwareDatetime | None = None


class ExperimentIn(Strict):
    """A new experiment, created as a draft."""

    key: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    name: Text200
    model: Key
    kind: Literal["ab", "staggered"]
    unit: Literal["case", "reviewer", "site"] = "case"
    ai_weight: float = Field(0.5, gt=0, lt=1)
    hypothesis: Annotated[str, StringConstraints(max_length=4000)] = ""
    sites: list[RolloutSiteIn] = Field(default_factory=list, max_length=1000)


class RolloutSiteOut(BaseModel):
    site: str
    go_live: datetime | None


class ArmOut(BaseModel):
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
    items: list[ExperimentOut]


class AnalysisIn(Strict):
    """How to analyse a staggered-rollout panel."""

    control: Literal["never", "not_yet"] = "not_yet"
    method: Literal["dr", "reg", "ipw"] = "dr"
    covariates: list[Key] = Field(default_factory=list, max_length=50)
    draws: int = Field(999, ge=99, le=9999)


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
    items: list[BacklogItemOut]


class BacklogPatchIn(Strict):
    """Change an item: status, owner (e-mail; empty string for nobody), notes; row_version guards lost updates."""

    status: Literal["new", "triaged", "planned", "in_training", "shipped", "verified", "dismissed"] | None = None
    owner: Annotated[str, StringConstraints(max_length=254)] | None = None
    notes: Annotated[str, StringConstraints(max_length=10_000)] | None = None
    row_version: int | None = Field(None, ge=1, le=MAX_ID)


class RefreshOut(BaseModel):
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
