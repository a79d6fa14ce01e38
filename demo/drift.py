"""The demo's drift: fraud-alert amounts run higher over the last two weeks, and a drift guardrail catches it."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from demo.catalog import SEED_ACTOR
from feedback.models import ModelVersion
from feedback.overrides import guardrails

DRIFT_DAYS = 14  # the last two weeks ...
DRIFT_FACTOR = math.exp(0.5)  # ... have amounts about 65% higher (half a unit on the log scale)


def shift_amount(rec: dict[str, Any], now: datetime) -> None:
    """Raise a recent fraud case's amount before it is stored: its features, subject and explanation agree."""
    if rec["created_at"] < now - timedelta(days=DRIFT_DAYS):
        return
    old = rec["features"]["amount"]
    new = round(old * DRIFT_FACTOR, 2)
    rec["features"]["amount"] = new
    rec["subject"] = rec["subject"].replace(f"£{old:,.2f}", f"£{new:,.2f}")
    for factor in rec["explanation"]["factors"]:
        if factor["name"] == "Amount":
            factor["value"], factor["contribution"] = new, round(math.log10(new + 1) / 20, 3)


def watch(session: Session, version: ModelVersion) -> None:
    """A drift guardrail on the fraud version: any input or output past a distance of 0.1 over 14 days."""
    guardrails.add_guardrail(
        session,
        SEED_ACTOR,
        version_id=version.id,
        kind="drift",
        window_size=DRIFT_DAYS,
        threshold=0.1,
        auto_pause=False,
    )
