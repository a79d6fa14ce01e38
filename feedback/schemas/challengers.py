"""API schemas of shadow challengers: where they were stored, and the comparison rows (ChallengerIn, the
body, lives beside RecommendationIn in feedback.schemas.review, which carries a list of them)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, RootModel


class StoredChallengerOut(BaseModel):
    """Where one challenger was stored, and whether it was new."""

    id: int
    model_version: str
    created: bool


class StoredChallengersOut(BaseModel):
    """Answer to an array of challengers (one object answers one StoredChallengerOut)."""

    items: list[StoredChallengerOut]


class ChallengerAnswer(RootModel[StoredChallengersOut | StoredChallengerOut]):
    """An array's StoredChallengersOut, or one StoredChallengerOut for a single object."""


class ChallengerRow(BaseModel):
    """One challenger version (and segment) against the champion on the same decided cases."""

    version: str
    segment: str | None = Field(description="the segment value, or null for the version overall")
    decisions: Literal["all", "unaided"] = Field(description="all decided cases, or only those decided without the AI")
    n: int = Field(description="decided cases the challenger scored")
    agreement: float | None
    agreement_ci_low: float | None
    agreement_ci_high: float | None
    would_be_override_rate: float | None
    would_be_override_rate_ci_low: float | None
    would_be_override_rate_ci_high: float | None
    accuracy: float | None
    accuracy_ci_low: float | None
    accuracy_ci_high: float | None
    with_outcome: int
    champion_agreement: float | None
    champion_override_rate: float | None
    champion_accuracy: float | None
    champion_accuracy_ci_low: float | None
    champion_accuracy_ci_high: float | None
    right_only_champion: int = Field(description="cases with an outcome only the champion got right")
    right_only_challenger: int = Field(description="cases with an outcome only the challenger got right")
    mcnemar_p: float | None = Field(description="McNemar's test of accuracy against the champion")
    mcnemar_method: str
    mcnemar_agreement_p: float | None = Field(description="McNemar's test of agreement with the reviewer")


class ChallengersOut(BaseModel):
    """A model's challengers against its champion."""

    model: str
    version: str | None
    by: str | None
    since: date | None  # the first UTC day of decisions counted (None: from the first)
    until: date | None  # the last UTC day of decisions counted (None: to now)
    unaided_note: str
    rows: list[ChallengerRow]
