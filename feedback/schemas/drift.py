"""Drift API responses."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class DriftRowOut(BaseModel):
    """One feature's drift: the method that decided, its statistic, the test's p-value, the limit and the counts."""

    feature: str = Field(description='"features.NAME" (an input), "confidence" or "recommended_action" (the output)')
    kind: Literal["numeric", "categorical"]
    method: Literal["ks", "wasserstein", "chisquare", "jensenshannon"]
    statistic: float | None = Field(description="KS D, Wasserstein ÷ reference std, chi-square or JS; null: no data")
    p_value: float | None = Field(description="of the KS or chi-square test, also when a distance decided")
    threshold: float = Field(description="0.05 on the p-value for tests, the distance limit (0.1) for distances")
    drifted: bool
    n_reference: int
    n_current: int


class DriftOut(BaseModel):
    """Drift of one version's inputs and outputs between two windows of inclusive UTC days."""

    reference_from: date | None = Field(description="null when the version has no recommendations yet")
    reference_to: date | None
    current_from: date
    current_to: date
    rows: list[DriftRowOut]
