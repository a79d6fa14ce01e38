"""Request and response schemas of experiments and analyses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
)

from feedback.schemas.types import Draws, Key, Notes4000, Strict, Text100, Text200, Timestamp


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
