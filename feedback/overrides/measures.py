"""What each guardrail kind measures: the override rate or accuracy of the last n, a control chart, drift, readiness."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics.overrides import p_chart
from feedback.db import utcnow
from feedback.drift import reports as drift_reports
from feedback.models import Decision, Guardrail, Outcome, Recommendation
from feedback.overrides import queries as override_queries
from feedback.readiness import reports

DRIFT_MAX_DAYS = 366


def override_rate_of_last(session: Session, version_id: int, n: int) -> float | None:
    """Override rate over the version's last n accepted or overridden decisions (None until there are n)."""
    actions = session.scalars(
        select(Decision.action)
        .where(
            Decision.model_version_id == version_id,
            Decision.ai_shown.is_(True),
            Decision.action.in_(("accept", "override")),
        )
        .order_by(Decision.decided_at.desc(), Decision.id.desc())
        .limit(n)
    ).all()
    return sum(a == "override" for a in actions) / n if len(actions) == n else None


def accuracy_of_last(session: Session, version_id: int, n: int) -> float | None:
    """Share of the version's last n decided cases with a label outcome where the AI was right."""
    rows = session.execute(
        select(Recommendation.recommended_action, Outcome.label)
        .join(Outcome, Outcome.recommendation_id == Recommendation.id)
        .join(Decision, Decision.recommendation_id == Recommendation.id)
        .where(Recommendation.model_version_id == version_id, Outcome.label.is_not(None))
        .order_by(Decision.decided_at.desc(), Outcome.id)
        .limit(n)
    ).all()
    return sum(r == t for r, t in rows) / n if len(rows) == n else None


def control_chart_signal(session: Session, guardrail: Guardrail) -> float | None:
    """Today's override rate if it is above the upper limit set by the previous `window_size` days, else None."""
    version = guardrail.model_version
    today = utcnow().date()
    w = override_queries.window(
        version.model_id, (today - timedelta(days=guardrail.window_size)).isoformat(), today.isoformat(), version.id
    )
    daily = pd.DataFrame(override_queries.daily_override_counts(session, w))
    if len(daily) <= guardrail.window_size // 2:
        return None  # not enough history for a baseline
    chart = p_chart(daily, baseline_periods=len(daily) - 1)
    last = chart.iloc[-1]
    return float(last["p"]) if last["p"] > last["ucl"] else None


def drift_signal(session: Session, guardrail: Guardrail) -> tuple[float | None, bool, str]:
    """The most drifted input or output over the last `window_size` days against the reference, from the histograms.

    Its value is the distance (or, where a window is small and the test decides, the p-value).
    """
    version = guardrail.model_version
    days, limit = guardrail.window_size, guardrail.threshold or 0.1
    row, breached = drift_reports.worst(session, version.id, days, limit)
    if row is None:
        return None, False, f"{version.version}: no drift measured yet"
    label = drift_reports.feature_label(version.model, row.feature)
    value = row.statistic if row.method in ("wasserstein", "jensenshannon") else row.p_value
    moved = "drifted" if breached else "is the closest to drifting"
    return (
        value,
        breached,
        f"{version.version}: {label} {moved} over the last {days} days ({drift_reports.evidence(row)})",
    )


def measure(session: Session, guardrail: Guardrail) -> tuple[float | None, bool, str]:
    """The guardrail's current value, whether it is breached, and a sentence saying so."""
    version = guardrail.model_version
    n, limit = guardrail.window_size, guardrail.threshold
    if guardrail.kind == "override_rate_above":
        value = override_rate_of_last(session, version.id, n)
        breached = value is not None and limit is not None and value > limit
        return (
            value,
            breached,
            f"{version.version}: override rate {value or 0:.1%} over the last {n} decisions is above {limit or 0:.1%}",
        )
    if guardrail.kind == "accuracy_below":
        value = accuracy_of_last(session, version.id, n)
        breached = value is not None and limit is not None and value < limit
        return (
            value,
            breached,
            f"{version.version}: accuracy {value or 0:.1%} over the last {n} outcomes is below {limit or 0:.1%}",
        )
    if guardrail.kind == "readiness":
        card = reports.scorecard(session, version)
        return None, card.verdict == "kill", f"{version.version}: {card.summary()}"
    if guardrail.kind == "drift":
        return drift_signal(session, guardrail)
    value = control_chart_signal(session, guardrail)
    return (
        value,
        value is not None,
        f"{version.version}: today's override rate {value or 0:.1%} is above the control limit of the last {n} days",
    )
