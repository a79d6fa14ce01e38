"""Readiness plan and scorecard schemas of the JSON API."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from feedback.schemas.types import MAX_ID, Strict, Text2000

Metric = Literal[
    "decisions",
    "override_rate",
    "accuracy",
    "sla_attainment",
    "drift",
    "median_seconds_to_decide",
    "experiment_effect",
]
Direction = Literal["at_least", "at_most"]
Status = Literal["go", "kill", "keep_collecting"]


class CriterionIn(Strict):
    """One go/kill criterion: the metric, which way is good, the threshold, and the sample needed before a call.

    Shares (override_rate, accuracy, sla_attainment) are 0 to 1; decisions and drift are counts
    (decisions only at_least, drift only at_most: features drifted past their limit);
    median_seconds_to_decide is seconds; experiment_effect names the experiment and its metric and
    is judged as AI shown minus hidden.
    """

    metric: Metric
    direction: Direction
    threshold: float
    min_n: int = Field(0, ge=0, le=10_000_000)
    experiment_id: int | None = Field(None, ge=1, le=MAX_ID)
    experiment_metric: Literal["override", "correct", "handling_seconds"] | None = None


class ReadinessPlanIn(Strict):
    """A readiness plan: its criteria, and (required for a change) the reason."""

    criteria: list[CriterionIn] = Field(min_length=1, max_length=20)
    reason: Text2000 = ""

    def criteria_data(self) -> list[dict[str, Any]]:
        """The criteria as plain dicts for the service (which checks the rules between fields)."""
        return [c.model_dump() for c in self.criteria]


class ReadinessPlanOut(BaseModel):
    """One stored plan version."""

    model: str
    version: str
    plan_version: int
    criteria: list[dict[str, Any]]
    reason: str
    created_at: datetime


class ReadinessPlanListOut(BaseModel):
    """A version's plan versions, newest first."""

    items: list[ReadinessPlanOut]


class CriterionOut(BaseModel):
    """One criterion's evidence: its value, the anytime-valid interval, n, and its status."""

    name: str
    threshold: float
    direction: Direction
    value: float | None
    ci_low: float | None
    ci_high: float | None
    n: int
    status: Status


class ReadinessOut(BaseModel):
    """A version's readiness verdict and the plan version it used."""

    verdict: Status
    plan_version: int | None
    evaluated_at: datetime
    criteria: list[CriterionOut]
