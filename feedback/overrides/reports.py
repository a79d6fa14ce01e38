"""Override reports for model owners: SQL counts from override_queries, statistics from analytics.overrides."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, joinedload

from analytics import overrides
from feedback.catalog.services import get_model
from feedback.db import utcnow
from feedback.errors import NotFound, ValidationFailed
from feedback.models import Alert, DecisionCount, Guardrail, Model, ModelVersion, User
from feedback.overrides import queries as oq

ACCURACY_GROUPS = ("model_version", "reason_code", "reviewer")
RATE_COLUMNS = [
    "key",
    "decisions",
    "accepts",
    "overrides",
    "escalations",
    "override_rate",
    "ci_low",
    "ci_high",
    "escalation_rate",
]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    """Rows as a frame with fixed columns, even when there are none."""
    return pd.DataFrame(rows, columns=columns) if rows else pd.DataFrame(columns=columns)


def rate_rows(
    session: Session, w: oq.Window, by: str, viewer: User | None = None
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Override rates with intervals per group, and the same for the whole window."""
    counts = _frame(
        oq.override_counts(session, w, by, viewer), ["key", "decisions", "accepts", "overrides", "escalations"]
    )
    total = oq.override_totals(session, w)
    table = overrides.with_rates(counts)[RATE_COLUMNS]
    total_row = overrides.with_rates(pd.DataFrame([{"key": "all", **total}]))[RATE_COLUMNS].iloc[0].to_dict()
    return table, total_row


SPAN_DAYS = 90


@dataclass(frozen=True)
class VersionSpan:
    """The overview's default period: the current version and the one before it, from the earlier one's go-live."""

    current: str
    previous: str | None
    go_live: date
    start: date

    @property
    def clipped(self) -> bool:
        """Whether the go-live lies further back than SPAN_DAYS, so the period starts later."""
        return self.start > self.go_live


def version_span(session: Session, model: Model) -> VersionSpan | None:
    """The current version (the newest reviewers see, else the newest) and the one before it, up to 90 days.

    A version's go-live is its first counted decision (its registration when it has none).
    """
    if not model.versions:
        return None
    visible = [v for v in model.versions if v.ai_visible]
    current = visible[-1] if visible else model.versions[-1]
    at = model.versions.index(current)
    previous = model.versions[at - 1] if at > 0 else None
    earliest = previous or current
    first_day = session.scalar(
        select(func.min(DecisionCount.day)).where(
            DecisionCount.model_version_id == earliest.id, DecisionCount.dimension == "model_version"
        )
    )
    go_live = date.fromisoformat(first_day) if first_day else earliest.created_at.date()
    today = utcnow().date()
    start = min(max(go_live, today - timedelta(days=SPAN_DAYS - 1)), today)
    return VersionSpan(current.version, previous.version if previous else None, go_live, start)


@dataclass(frozen=True)
class Overview:
    """Everything on a model's overview page."""

    model: Model
    window: oq.Window
    total: dict[str, Any]
    versions: pd.DataFrame
    comparison: overrides.Comparison | None
    accuracy: dict[str, Any] | None
    chart: pd.DataFrame
    alerts: list[Alert]
    guardrails: list[Guardrail]
    span: VersionSpan | None = None

    @property
    def alarms(self) -> list[Alert]:
        """Open alerts of versions still in use: the ones to act on."""
        return [a for a in self.alerts if a.status == "open" and a.model_version.stage != "retired"]

    @property
    def alert_history(self) -> list[Alert]:
        """Acknowledged alerts, and every alert of a retired version: history, not alarms."""
        return [a for a in self.alerts if a not in self.alarms]


def model_window(
    session: Session, key: str, date_from: str | None, date_to: str | None, version: str | None = None
) -> tuple[Model, oq.Window]:
    """The model and the decision window a page or API call asks for."""
    model = get_model(session, key)
    version_id = None
    if version:
        version_id = session.scalar(
            select(ModelVersion.id).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
        )
        if version_id is None:
            raise NotFound(f"{model.key} has no version {version!r}", {"version": "unknown version"})
    return model, oq.window(model.id, date_from, date_to, version_id)


def overview(
    session: Session,
    key: str,
    date_from: str | None = None,
    date_to: str | None = None,
    baseline_days: int = 14,
    span_by_default: bool = False,
) -> Overview:
    """Totals, per-version rates, the newest two versions compared, accuracy, the p-chart, alerts.

    With span_by_default and no dates, the period is the version span (see version_span), not 30 days.
    """
    span = None
    if span_by_default and date_from is None and date_to is None:
        span = version_span(session, get_model(session, key))
        date_from = span.start.isoformat() if span else None
    model, w = model_window(session, key, date_from, date_to)
    versions, total = rate_rows(session, w, "model_version")
    comparison = None
    judged = versions[(versions["accepts"] + versions["overrides"]) > 0]
    order = {v.version: v.id for v in model.versions}
    judged = judged.assign(order=judged["key"].map(order)).sort_values("order")
    if len(judged) >= 2:
        new, old = judged.iloc[-1], judged.iloc[-2]
        comparison = overrides.compare_rates(
            str(new["key"]),
            int(new["overrides"]),
            int(new["accepts"] + new["overrides"]),
            str(old["key"]),
            int(old["overrides"]),
            int(old["accepts"] + old["overrides"]),
        )
    acc_rows = oq.accuracy_counts(session, w)
    accuracy = None
    if acc_rows and acc_rows[0]["with_outcome"]:
        accuracy = overrides.accuracy(pd.DataFrame(acc_rows)).iloc[0].to_dict()
    daily = _frame(oq.daily_override_counts(session, w), ["version", "day", "accepts", "overrides"])
    alerts = model_alerts(session, model)
    guardrails = list(
        session.scalars(
            select(Guardrail)
            .options(joinedload(Guardrail.model_version))
            .join(ModelVersion)
            .where(ModelVersion.model_id == model.id, Guardrail.enabled.is_(True))
            .order_by(Guardrail.id)
        )
    )
    return Overview(
        model,
        w,
        total,
        versions,
        comparison,
        accuracy,
        overrides.p_chart(daily, baseline_days),
        alerts,
        guardrails,
        span,
    )


def model_alerts(session: Session, model: Model, limit: int = 20) -> list[Alert]:
    """A model's alerts, open ones first, newest first."""
    return list(
        session.scalars(
            select(Alert)
            .options(joinedload(Alert.model_version))
            .join(ModelVersion)
            .where(ModelVersion.model_id == model.id)
            .order_by(Alert.status.desc(), Alert.opened_at.desc())
            .limit(limit)
        )
    )


@dataclass(frozen=True)
class Breakdown:
    """One breakdown of override rates, each group tested against all the others."""

    model: Model
    window: oq.Window
    by: str
    table: pd.DataFrame
    total: dict[str, Any]


def breakdown(
    session: Session,
    key: str,
    by: str,
    date_from: str | None = None,
    date_to: str | None = None,
    version: str | None = None,
    viewer: User | None = None,
) -> Breakdown:
    """Override rates by a dimension, with each group compared to the rest (z-test, Newcombe interval).

    Reviewers appear as the viewer may see them: names for admins, else pseudonyms.
    """
    model, w = model_window(session, key, date_from, date_to, version)
    table, total = rate_rows(session, w, by, viewer)
    judged_total = int(total["accepts"] + total["overrides"])
    tests: list[dict[str, float | None]] = []
    for row in table.itertuples(index=False):
        judged = int(row.accepts + row.overrides)
        rest = judged_total - judged
        if by == "reason_code" or judged == 0 or rest == 0:
            tests.append(
                {"vs_rest_difference": None, "vs_rest_ci_low": None, "vs_rest_ci_high": None, "vs_rest_p": None}
            )
            continue
        c = overrides.compare_rates(
            str(row.key), int(row.overrides), judged, "rest", int(total["overrides"] - row.overrides), rest
        )
        tests.append(
            {
                "vs_rest_difference": c.difference,
                "vs_rest_ci_low": c.ci_low,
                "vs_rest_ci_high": c.ci_high,
                "vs_rest_p": c.p_value,
            }
        )
    table = (
        pd.concat([table.reset_index(drop=True), pd.DataFrame(tests, index=table.index).reset_index(drop=True)], axis=1)
        if len(table)
        else table
    )
    return Breakdown(model, w, by, table, total)


def who_was_right(
    session: Session,
    key: str,
    by: str,
    date_from: str | None = None,
    date_to: str | None = None,
    viewer: User | None = None,
) -> pd.DataFrame:
    """Accuracy of the AI and of the final decision against outcomes, by version, reason code or reviewer."""
    if by not in ACCURACY_GROUPS:
        raise ValidationFailed("unknown grouping", {"by": "must be " + ", ".join(ACCURACY_GROUPS)})
    _, w = model_window(session, key, date_from, date_to)
    rows = oq.accuracy_counts(session, w, by, viewer)
    columns = ["key", "with_outcome", "ai_right", "final_right", "overrides", "corrected", "overrode_right"]
    return overrides.accuracy(_frame(rows, columns))


def right_columns(by: str) -> list[str]:
    """The who-was-right columns worth showing for a grouping, each saying something the others do not.

    An override's final action differs from the AI's, so among overrides "the human corrected
    the AI" is "the final decision was right" and "overrode a right AI" is "the AI was right".
    Grouped by reason code every row but "(accepted)" is overrides only: the override columns
    would repeat the accuracy columns, so they are left out. By reviewer or version rows mix
    accepts and overrides, and "right when overriding" is the one override figure that is new.
    The page and the CSV show the same columns.
    """
    columns = ["key", "with_outcome", "ai_accuracy", "ai_accuracy_ci_low", "ai_accuracy_ci_high"]
    columns += ["final_accuracy", "final_accuracy_ci_low", "final_accuracy_ci_high"]
    if by != "reason_code":
        columns += ["overrides", "corrected_share"]
    return columns


def reviewers(
    session: Session, key: str, date_from: str | None = None, date_to: str | None = None, viewer: User | None = None
) -> pd.DataFrame:
    """Per reviewer: accept rate against median seconds to decide (rubber-stamping shows up here)."""
    _, w = model_window(session, key, date_from, date_to)
    buckets = _frame(oq.reviewer_speed(session, w, viewer), ["reviewer", "bucket", "decisions", "accepts", "overrides"])
    return overrides.reviewer_table(buckets)
