"""Response schemas of the override and resolution analytics, and of alerts."""

from __future__ import annotations

from datetime import datetime

from pydantic import (
    BaseModel,
)


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
