"""The drift criterion's one link to the drift reports (feedback.drift, built in parallel).

`drifted_features` is the only function the lead wires at merge: until `feedback.drift.reports`
exists, the drift criterion reads "keep collecting" and says that drift is not available.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import import_module
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class DriftEvidence:
    """How many features drifted past their limit, of how many compared, on how many current rows."""

    available: bool
    drifted: int = 0
    features: int = 0
    n_current: int = 0
    names: tuple[str, ...] = ()
    reason: str = ""


def drifted_features(session: Session, version_id: int) -> DriftEvidence:
    """Count the features the drift reports flag for this version (reference and current windows by default)."""
    try:
        reports: Any = import_module("feedback.drift.reports")
    except ImportError:
        return DriftEvidence(available=False, reason="drift reports are not available in this build")
    rows = reports.drift_rows(session, version_id=version_id)
    if not rows:
        return DriftEvidence(available=False, reason="no drift comparison yet (no reference window)")
    drifted = tuple(row.feature for row in rows if row.drifted)
    return DriftEvidence(
        available=True,
        drifted=len(drifted),
        features=len(rows),
        n_current=min(int(row.n_current) for row in rows),
        names=drifted,
    )
