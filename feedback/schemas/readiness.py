"""Readiness plan and scorecard schemas of the JSON API."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, Field

from feedback.schemas.types import Message, RowId, Strict, Text2000, _whole_number

Direction = Literal["at_least", "at_most"]
Status = Literal["go", "kill", "keep_collecting"]
MAX_COUNT = 10_000_000
# A whole number of a JSON body (495.0 included, as JSON Schema's "integer" is).
MinN = Annotated[int, Field(ge=0, le=MAX_COUNT), BeforeValidator(_whole_number)]
Share = Annotated[float, Field(ge=0, le=1)]


class DecisionsIn(Strict):
    """At least `threshold` decisions with the AI shown (a count: go once reached, never a kill)."""

    metric: Literal["decisions"]
    direction: Literal["at_least"]
    threshold: Annotated[int, Field(ge=1, le=MAX_COUNT), BeforeValidator(_whole_number)]
    min_n: MinN = 0


class RateIn(Strict):
    """A share (0 to 1) judged on its confidence sequence: at_most on its upper bound, at_least on its lower."""

    metric: Literal["override_rate", "accuracy", "sla_attainment"]
    direction: Direction
    threshold: Share
    min_n: MinN = 0


class DriftIn(Strict):
    """At most `threshold` features drifted past their limit (from the drift reports)."""

    metric: Literal["drift"]
    direction: Literal["at_most"]
    threshold: Annotated[int, Field(ge=0, le=1000), BeforeValidator(_whole_number)]
    min_n: MinN = 0


class MedianSecondsIn(Strict):
    """The median seconds from opening a case to deciding it (a floor against rubber-stamping)."""

    metric: Literal["median_seconds_to_decide"]
    direction: Direction
    threshold: Annotated[float, Field(gt=0, le=30 * 86400)]
    min_n: MinN = 0


class ExperimentEffectIn(Strict):
    """A linked experiment's effect on one of its metrics, AI shown minus hidden, on an anytime-valid interval."""

    metric: Literal["experiment_effect"]
    direction: Direction
    threshold: float
    min_n: MinN = 0
    experiment_id: RowId
    experiment_metric: Literal["override", "correct", "handling_seconds"]


CriterionIn = Annotated[
    DecisionsIn | RateIn | DriftIn | MedianSecondsIn | ExperimentEffectIn, Field(discriminator="metric")
]


class ReadinessPlanIn(Strict):
    """A readiness plan: its criteria (one per metric, or per experiment and metric) and, optionally, a note."""

    criteria: list[CriterionIn] = Field(min_length=1, max_length=20)
    reason: Text2000 = ""


class ReadinessPlanChangeIn(ReadinessPlanIn):
    """The next plan version: a change says why."""

    reason: Message


def criterion_field(path: str) -> str:
    """`criteria[0].override_rate.threshold` (pydantic names the union member) -> `criteria[0].threshold`;
    an unknown metric (`criteria[0]`, no member matched its tag) -> `criteria[0].metric`."""
    path = re.sub(r"^(criteria\[\d+\])\.\w+(\.|$)", r"\1\2", path)
    return path + ".metric" if re.fullmatch(r"criteria\[\d+\]", path) else path


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
