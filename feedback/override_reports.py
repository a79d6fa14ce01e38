"""Override reports for model owners: SQL counts from override_queries, statistics from analytics.overrides."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from analytics import overrides
from feedback import override_queries as oq
from feedback.errors import NotFound, ValidationFailed
from feedback.models import Alert, Guardrail, Model, ModelVersion, User
from feedback.services import get_model

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
    session: Session, key: str, date_from: str | None = None, date_to: str | None = None, baseline_days: int = 14
) -> Overview:
    """Totals, per-version rates, the newest two versions compared, accuracy, the p-chart, alerts."""
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
        model, w, total, versions, comparison, accuracy, overrides.p_chart(daily, baseline_days), alerts, guardrails
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


def reviewers(
    session: Session, key: str, date_from: str | None = None, date_to: str | None = None, viewer: User | None = None
) -> pd.DataFrame:
    """Per reviewer: accept rate against median seconds to decide (rubber-stamping shows up here)."""
    _, w = model_window(session, key, date_from, date_to)
    buckets = _frame(oq.reviewer_speed(session, w, viewer), ["reviewer", "bucket", "decisions", "accepts", "overrides"])
    return overrides.reviewer_table(buckets)
