"""Typed SQLAlchemy models for the countersign loop."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, JSONType, utcnow

ROLES = ("frontline", "exception_handler", "model_owner", "analyst", "admin")
STAGES = ("shadow", "pilot", "production", "paused", "retired")
DECISION_ACTIONS = ("accept", "override", "escalate")
# open: waiting for a reviewer; exception: routed to the exceptions queue at ingest;
# escalated: a reviewer escalated it; decided / resolved: it has its final action.
RECOMMENDATION_STATUSES = ("open", "decided", "escalated", "exception", "resolved")
EXCEPTION_KINDS = ("reviewer_escalation", "low_confidence", "policy", "missing_data", "model_error", "audit_sample")
SEVERITIES = ("low", "medium", "high", "critical")
EXCEPTION_STATUSES = ("open", "in_progress", "resolved")
# SLA hours by severity when a model has no policy of its own for a kind and severity.
DEFAULT_SLA_HOURS = {"critical": 4, "high": 8, "medium": 24, "low": 72}
# Stages whose recommendations are shown to reviewers; in the others people decide unaided.
AI_VISIBLE_STAGES = ("pilot", "production")


def _in(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that a column holds one of the values."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class User(Base):
    """A person who signs in; the role decides what they may do."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(32))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # Every session cookie carries the generation it was issued under; bumping it (logout, a new
    # password or role, deactivation) ends all of the user's sessions on every host at once.
    session_generation: Mapped[int] = mapped_column(default=0, server_default=text("0"))


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class LoginThrottle(Base):
    """Failed sign-ins for one (account, client address) pair, and when the next try is allowed.

    `account` is the normalised e-mail as typed, known or not, so throttling reveals nothing.
    """

    __tablename__ = "login_throttles"

    account: Mapped[str] = mapped_column(String(254), primary_key=True)
    address: Mapped[str] = mapped_column(String(64), primary_key=True)
    failures: Mapped[int] = mapped_column(default=0)
    last_failed_at: Mapped[datetime | None]
    next_attempt_at: Mapped[datetime | None]
    # When this address last signed in to this account: known addresses skip the account-wide limit.
    succeeded_at: Mapped[datetime | None]


class Model(Base):
    """A decision model: its allowed actions (labels) and the reason codes for overriding it."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[str]] = mapped_column(JSONType)
    reason_codes: Mapped[list[dict[str, str]]] = mapped_column(JSONType)
    # The model's own words: {action code: label}; {attribute: {"label": ..., "values": {value: label}}}.
    # Missing entries read as the humanised code (feedback.wording).
    action_labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict, server_default=text("'{}'"))
    segment_labels: Mapped[dict[str, dict[str, Any]]] = mapped_column(
        JSONType, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(back_populates="model", order_by="ModelVersion.id")

    def action_label(self, code: str | None) -> str:
        """The model's label for an action code (the code humanised when it has none)."""
        from feedback.wording import humanise

        if code is None:
            return ""
        return (self.action_labels or {}).get(code) or humanise(code)

    def segment_label(self, attribute: str) -> str:
        """The model's label for a segment attribute ("claim_band" reads "Claim band" by default)."""
        from feedback.wording import humanise

        return ((self.segment_labels or {}).get(attribute) or {}).get("label") or humanise(attribute)

    def segment_value_label(self, attribute: str, value: Any) -> str:
        """The model's label for one value of a segment attribute (the value, underscores as spaces, if none)."""
        from feedback.wording import humanise_value

        values = ((self.segment_labels or {}).get(attribute) or {}).get("values") or {}
        key = value if isinstance(value, str) else _scalar_text(value)
        return values.get(key) or humanise_value(value)

    def reason_label(self, code: str | None) -> str:
        """Human label of a reason code (the code itself when unknown)."""
        for reason in self.reason_codes:
            if reason["code"] == code:
                return reason["label"]
        return code or ""


def _scalar_text(value: Any) -> str:
    """A segment value as the text its label is keyed by: true/false/null like JSON, numbers as written."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ModelOwner(Base):
    """A model owner responsible for one model: only they (and admins) change it."""

    __tablename__ = "model_owners"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class ModelVersion(Base):
    """One version of a model, in a stage that decides whether reviewers see its output."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        CheckConstraint(_in("stage", STAGES), name="stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    # Exception rules applied at ingest: min_confidence, policy_flags, required_features,
    # audit_sample_rate (see feedback.rules).
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(back_populates="versions")

    @property
    def ai_visible(self) -> bool:
        """Whether reviewers see this version's recommendations."""
        return self.stage in AI_VISIBLE_STAGES


class Recommendation(Base):
    """One AI proposal for one case, waiting for (or holding) its human countersignature."""

    __tablename__ = "recommendations"
    __table_args__ = (
        UniqueConstraint("model_id", "external_id"),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence"),
        CheckConstraint(
            "(recommended_action IS NOT NULL AND confidence IS NOT NULL) OR error IS NOT NULL", name="action_or_error"
        ),
        CheckConstraint(_in("status", RECOMMENDATION_STATUSES), name="status"),
        Index("ix_recommendations_queue", "status", "due_at", "id"),
        Index("ix_recommendations_model_site", "model_id", "site"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    external_id: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(500))
    site: Mapped[str] = mapped_column(String(100))
    segment: Mapped[dict[str, Any]]
    recommended_action: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None]
    explanation: Mapped[dict[str, Any]]
    features: Mapped[dict[str, Any] | None]
    flags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    payload_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default="open")
    claimed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    claimed_at: Mapped[datetime | None]
    claim_expires_at: Mapped[datetime | None]
    row_version: Mapped[int] = mapped_column(default=1)

    model: Mapped[Model] = relationship()
    model_version: Mapped[ModelVersion] = relationship()
    claimed_by: Mapped[User | None] = relationship()
    decision: Mapped[Decision | None] = relationship(back_populates="recommendation")
    outcomes: Mapped[list[Outcome]] = relationship(order_by="Outcome.observed_at", viewonly=True)

    __mapper_args__ = {"version_id_col": row_version}


class Decision(Base):
    """The human countersignature on a recommendation; at most one per recommendation."""

    __tablename__ = "decisions"
    __table_args__ = (
        CheckConstraint(_in("action", DECISION_ACTIONS), name="action"),
        CheckConstraint(
            "action <> 'override' OR ai_shown = false OR reason_code IS NOT NULL",
            name="override_reason",
        ),
        Index("ix_decisions_decided_at", "decided_at"),
        Index("ix_decisions_version_decided", "model_version_id", "decided_at"),
        Index("ix_decisions_model_decided", "model_id", "decided_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"), unique=True)
    # Copied from the recommendation so override analytics group and window without a join.
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))
    final_action: Mapped[str | None] = mapped_column(String(64))
    reason_code: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str] = mapped_column(Text, default="")
    opened_at: Mapped[datetime]
    decided_at: Mapped[datetime] = mapped_column(default=utcnow)
    ai_shown: Mapped[bool]
    channel: Mapped[str] = mapped_column(String(8), default="ui")
    # Decided on the review screen less than services.QUICK_DECISION_SECONDS after the case was
    # opened: too quick to have read it (docs/product.md).
    quick: Mapped[bool] = mapped_column(default=False, server_default=text("false"))

    recommendation: Mapped[Recommendation] = relationship(back_populates="decision")
    reviewer: Mapped[User] = relationship()


class DecisionException(Base):
    """A case that left the happy path, to be resolved by an exception handler within its SLA."""

    __tablename__ = "exceptions"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "kind"),
        CheckConstraint(_in("kind", EXCEPTION_KINDS), name="kind"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        CheckConstraint(_in("status", EXCEPTION_STATUSES), name="status"),
        CheckConstraint("(status = 'resolved') = (resolved_at IS NOT NULL)", name="resolved_at"),
        Index("ix_exceptions_queue", "status", "sla_due_at"),
        Index("ix_exceptions_model_opened", "model_id", "opened_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    site: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    opened_at: Mapped[datetime]
    sla_due_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16), default="open")
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    resolved_at: Mapped[datetime | None]
    resolved_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    resolution_action: Mapped[str | None] = mapped_column(String(64))
    resolution_note: Mapped[str] = mapped_column(Text, default="")
    row_version: Mapped[int] = mapped_column(default=1)

    recommendation: Mapped[Recommendation] = relationship()
    model: Mapped[Model] = relationship()
    assignee: Mapped[User | None] = relationship(foreign_keys=[assignee_id])
    raised_by: Mapped[User | None] = relationship(foreign_keys=[raised_by_id])
    resolved_by: Mapped[User | None] = relationship(foreign_keys=[resolved_by_id])

    __mapper_args__ = {"version_id_col": row_version}


class SlaPolicy(Base):
    """How long a model's exceptions of one kind and severity may stay unresolved."""

    __tablename__ = "sla_policies"
    __table_args__ = (
        UniqueConstraint("model_id", "kind", "severity"),
        CheckConstraint(_in("kind", EXCEPTION_KINDS), name="kind"),
        CheckConstraint(_in("severity", SEVERITIES), name="severity"),
        CheckConstraint("hours > 0", name="hours"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    kind: Mapped[str] = mapped_column(String(32))
    severity: Mapped[str] = mapped_column(String(16))
    hours: Mapped[float]


class Outcome(Base):
    """What later turned out to be true for a case, as reported by one source."""

    __tablename__ = "outcomes"
    __table_args__ = (
        UniqueConstraint("recommendation_id", "source"),
        CheckConstraint("(label IS NULL) <> (value IS NULL)", name="label_or_value"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    source: Mapped[str] = mapped_column(String(100))
    label: Mapped[str | None] = mapped_column(String(64))
    value: Mapped[float | None]
    observed_at: Mapped[datetime]
    received_at: Mapped[datetime] = mapped_column(default=utcnow)
    payload_hash: Mapped[str] = mapped_column(String(64))

    recommendation: Mapped[Recommendation] = relationship()


class DecisionCount(Base):
    """Daily counts of countersignatures per version and breakdown key, kept in step with every decision.

    Override analytics read these few rows instead of scanning every decision. `dimension` is
    model_version, site, reviewer (key: user id), reason_code ("(accepted)" when none),
    confidence_decile (key: 0..9), action_pair, reviewer_speed (key: "user id:bucket") or
    segment.ATTR; only decisions where the AI was shown are counted.
    """

    __tablename__ = "decision_counts"
    __table_args__ = (
        UniqueConstraint("model_version_id", "day", "dimension", "key", "shard"),
        Index("ix_decision_counts_lookup", "model_id", "dimension", "day"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    day: Mapped[str] = mapped_column(String(10))  # UTC date, YYYY-MM-DD
    dimension: Mapped[str] = mapped_column(String(80))
    key: Mapped[str] = mapped_column(String(200))
    # One of rollup.SHARDS copies of the cell, so concurrent decisions lock different rows; readers sum them.
    shard: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    accepts: Mapped[int] = mapped_column(default=0)
    overrides: Mapped[int] = mapped_column(default=0)
    escalations: Mapped[int] = mapped_column(default=0)
    # Against each case's first label outcome (accepts and overrides only).
    with_outcome: Mapped[int] = mapped_column(default=0)
    ai_right: Mapped[int] = mapped_column(default=0)
    final_right: Mapped[int] = mapped_column(default=0)
    outcome_overrides: Mapped[int] = mapped_column(default=0)
    corrected: Mapped[int] = mapped_column(default=0)
    overrode_right: Mapped[int] = mapped_column(default=0)


GUARDRAIL_KINDS = ("override_rate_above", "accuracy_below", "control_chart")


class Guardrail(Base):
    """A limit on a model version's behaviour; breaching it raises an alert and may pause the version."""

    __tablename__ = "guardrails"
    __table_args__ = (
        CheckConstraint(_in("kind", GUARDRAIL_KINDS), name="kind"),
        CheckConstraint("window_size >= 10", name="window_size"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    # override_rate_above / accuracy_below: the last `window_size` decisions (or outcomes);
    # control_chart: days of baseline before the day checked.
    window_size: Mapped[int]
    threshold: Mapped[float | None]
    auto_pause: Mapped[bool] = mapped_column(default=False)
    enabled: Mapped[bool] = mapped_column(default=True)
    last_value: Mapped[float | None]
    last_checked_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model_version: Mapped[ModelVersion] = relationship()


class Alert(Base):
    """A guardrail breach for model owners to see and act on."""

    __tablename__ = "alerts"
    __table_args__ = (CheckConstraint(_in("status", ("open", "acknowledged")), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    guardrail_id: Mapped[int] = mapped_column(ForeignKey("guardrails.id"), index=True)
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"), index=True)
    opened_at: Mapped[datetime] = mapped_column(default=utcnow)
    value: Mapped[float | None]
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="open")
    paused_from: Mapped[str | None] = mapped_column(String(16))
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    acknowledged_at: Mapped[datetime | None]

    guardrail: Mapped[Guardrail] = relationship()
    model_version: Mapped[ModelVersion] = relationship()


EXPERIMENT_KINDS = ("ab", "staggered")
EXPERIMENT_UNITS = ("case", "reviewer", "site")
EXPERIMENT_STATUSES = ("draft", "running", "stopped")
ARMS = ("ai_shown", "control")


class Experiment(Base):
    """An A/B test of showing the AI, or a staggered rollout of it across sites, on one model.

    A/B: each unit (case, reviewer or site) is hashed with the salt into `ai_shown` with
    probability `ai_weight`, else `control`. Staggered: a site is `ai_shown` from its go-live
    date on. At most one experiment per model runs at a time (a partial unique index).
    """

    __tablename__ = "experiments"
    __table_args__ = (
        CheckConstraint(_in("kind", EXPERIMENT_KINDS), name="kind"),
        CheckConstraint(_in("unit", EXPERIMENT_UNITS), name="unit"),
        CheckConstraint(_in("status", EXPERIMENT_STATUSES), name="status"),
        CheckConstraint("kind = 'ab' OR unit = 'site'", name="staggered_by_site"),
        CheckConstraint("ai_weight > 0 AND ai_weight < 1", name="ai_weight"),
        Index(
            "uq_experiments_running_model",
            "model_id",
            unique=True,
            sqlite_where=text("status = 'running'"),
            postgresql_where=text("status = 'running'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    hypothesis: Mapped[str] = mapped_column(Text, default="")
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    unit: Mapped[str] = mapped_column(String(16))
    salt: Mapped[str] = mapped_column(String(64))
    ai_weight: Mapped[float] = mapped_column(default=0.5)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    started_at: Mapped[datetime | None]
    stopped_at: Mapped[datetime | None]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_version: Mapped[int] = mapped_column(default=1)

    model: Mapped[Model] = relationship()
    sites: Mapped[list[RolloutSite]] = relationship(
        order_by="RolloutSite.site", cascade="all, delete-orphan", back_populates="experiment"
    )

    __mapper_args__ = {"version_id_col": row_version}

    @property
    def weights(self) -> dict[str, float]:
        """The configured share of units per arm (what the sample-ratio check expects)."""
        return {"ai_shown": self.ai_weight, "control": 1 - self.ai_weight}


class RolloutSite(Base):
    """One site's go-live in a staggered rollout; no date means a comparison site that stays unaided."""

    __tablename__ = "rollout_sites"
    __table_args__ = (UniqueConstraint("experiment_id", "site"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    site: Mapped[str] = mapped_column(String(100))
    go_live_at: Mapped[datetime | None]

    experiment: Mapped[Experiment] = relationship(back_populates="sites")


class Exposure(Base):
    """A reviewer was shown a case under an experiment arm: the record that assignment can be checked against."""

    __tablename__ = "exposures"
    __table_args__ = (
        UniqueConstraint("experiment_id", "recommendation_id", "reviewer_id"),
        CheckConstraint(_in("arm", ARMS), name="arm"),
        Index("ix_exposures_experiment_arm", "experiment_id", "arm"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"))
    recommendation_id: Mapped[int] = mapped_column(ForeignKey("recommendations.id"))
    reviewer_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    unit_id: Mapped[str] = mapped_column(String(200))
    arm: Mapped[str] = mapped_column(String(16))
    exposed_at: Mapped[datetime] = mapped_column(default=utcnow)


PANEL_SOURCES = ("platform", "upload")
RUN_STATUSES = ("queued", "running", "done", "failed")


class ImpactPanel(Base):
    """A unit x period panel of one outcome, with each unit's treatment, ready for impact analysis."""

    __tablename__ = "impact_panels"
    __table_args__ = (CheckConstraint(_in("source", PANEL_SOURCES), name="source"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(16))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    metric: Mapped[str] = mapped_column(String(64))
    period: Mapped[str] = mapped_column(String(16))  # day, week, or the uploaded period labels
    covariates: Mapped[list[str]] = mapped_column(JSONType, default=list)
    units: Mapped[int]
    periods: Mapped[int]
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    experiment: Mapped[Experiment | None] = relationship()
    created_by: Mapped[User] = relationship()


class PanelRow(Base):
    """One unit in one period: the outcome, whether the unit was treated, and covariates."""

    __tablename__ = "panel_rows"
    __table_args__ = (UniqueConstraint("panel_id", "unit", "period"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    panel_id: Mapped[int] = mapped_column(ForeignKey("impact_panels.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(200))
    period: Mapped[int]  # 1, 2, ... in time order
    label: Mapped[str] = mapped_column(String(32))  # the period as people read it
    value: Mapped[float]
    treated: Mapped[bool]
    covariates: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class AnalysisRun(Base):
    """An impact analysis computed off the request path; its progress and result live here."""

    __tablename__ = "analysis_runs"
    __table_args__ = (CheckConstraint(_in("status", RUN_STATUSES), name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # staggered or ab
    panel_id: Mapped[int | None] = mapped_column(ForeignKey("impact_panels.id", ondelete="CASCADE"))
    experiment_id: Mapped[int | None] = mapped_column(ForeignKey("experiments.id"))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(
        default=0, server_default=text("0")
    )  # worker attempts taken (see webapp/worker.py)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]

    panel: Mapped[ImpactPanel | None] = relationship()
    experiment: Mapped[Experiment | None] = relationship()


BACKLOG_STATUSES = ("new", "triaged", "planned", "in_training", "shipped", "verified", "dismissed")


class BacklogItem(Base):
    """A mined over-override pattern of one model version, tracked as retraining work.

    Identity is (version, pattern_key): refreshing the mining updates the item, never copies it.
    """

    __tablename__ = "backlog_items"
    __table_args__ = (
        UniqueConstraint("model_version_id", "pattern_key"),
        CheckConstraint(_in("status", BACKLOG_STATUSES), name="status"),
        Index("ix_backlog_items_model_priority", "model_id", "priority"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id"))
    pattern_key: Mapped[str] = mapped_column(String(500))
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    title: Mapped[str] = mapped_column(Text)
    cases: Mapped[int]
    overrides: Mapped[int]
    rate: Mapped[float]
    rate_low: Mapped[float]
    rate_high: Mapped[float]
    baseline: Mapped[float]
    excess: Mapped[float]
    q_value: Mapped[float]
    wrong_share: Mapped[float]
    priority: Mapped[float]
    top_final_action: Mapped[str | None] = mapped_column(String(64))
    top_reason: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(default=True)  # credible at the last refresh
    status: Mapped[str] = mapped_column(String(16), default="new")
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    notes: Mapped[str] = mapped_column(Text, default="")
    verified_by_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    refreshed_at: Mapped[datetime] = mapped_column(default=utcnow)
    row_version: Mapped[int] = mapped_column(default=1)

    model: Mapped[Model] = relationship()
    model_version: Mapped[ModelVersion] = relationship(foreign_keys=[model_version_id])
    verified_by_version: Mapped[ModelVersion | None] = relationship(foreign_keys=[verified_by_version_id])
    owner: Mapped[User | None] = relationship()

    __mapper_args__ = {"version_id_col": row_version}


WEBHOOK_EVENTS = ("backlog.item_created", "backlog.status_changed", "model_version.created")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


class Webhook(Base):
    """An admin-configured endpoint told about backlog events and new model versions, signed with its secret."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    secret: Mapped[str] = mapped_column(String(128))  # the HMAC key: the receiver needs the same value
    events: Mapped[list[str]] = mapped_column(JSONType)
    active: Mapped[bool] = mapped_column(default=True)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class WebhookDelivery(Base):
    """One event sent (or being retried) to one webhook: the delivery log."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="status"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), index=True)
    event: Mapped[str] = mapped_column(String(64))
    payload: Mapped[str] = mapped_column(Text)  # the exact body that was signed
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_status_code: Mapped[int | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    next_attempt_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None]

    webhook: Mapped[Webhook] = relationship()


EXPORT_FORMATS = ("csv", "jsonl", "parquet")


class ExportJob(Base):
    """A labelled-data export written off the request path, with its progress."""

    __tablename__ = "export_jobs"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        CheckConstraint(_in("format", EXPORT_FORMATS), name="format"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    format: Mapped[str] = mapped_column(String(16))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(
        default=0, server_default=text("0")
    )  # worker attempts taken (see webapp/worker.py)
    rows_done: Mapped[int] = mapped_column(default=0)
    rows_total: Mapped[int | None]
    bytes_total: Mapped[int | None] = mapped_column(BigInteger)
    message: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]


class ExportChunk(Base):
    """One piece of a finished export's bytes, kept in the database so any host can serve the download."""

    __tablename__ = "export_chunks"

    job_id: Mapped[int] = mapped_column(ForeignKey("export_jobs.id", ondelete="CASCADE"), primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class AuditEvent(Base):
    """Append-only, hash-chained record of one state change."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(unique=True)
    occurred_at: Mapped[datetime]
    actor_id: Mapped[int | None]
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[str] = mapped_column(String(64))
    details: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_audit_events_entity", "entity_type", "entity_id"),
        # Recent events of one kind, e.g. failed logins for rate limiting.
        Index("ix_audit_events_action_time", "action", "occurred_at"),
    )


class AuditHead(Base):
    """The chain's tip: one row, locked by every append so the chain never forks."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(default=0)
    last_hash: Mapped[str] = mapped_column(String(64))


class BacklogRefresh(Base):
    """A retraining-backlog refresh run off the request path: its progress and outcome live here.

    Mining only reads; the items are written at the end in one short transaction that updates the
    mined statistics and never the triage (status, owner, notes), so triage goes on meanwhile.
    """

    __tablename__ = "backlog_refreshes"
    __table_args__ = (
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
        Index("ix_backlog_refreshes_model_id", "model_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(16), default="queued")
    attempts: Mapped[int] = mapped_column(
        default=0, server_default=text("0")
    )  # worker attempts taken (see webapp/worker.py)
    progress: Mapped[float] = mapped_column(default=0.0)
    message: Mapped[str] = mapped_column(Text, default="")
    created: Mapped[int | None]
    updated: Mapped[int | None]
    retired: Mapped[int | None]
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None]
