"""Impact panels: unit × period tables of one outcome with each unit's treatment.

Platform panels are aggregated in SQL; uploads are validated whole before anything is stored.
"""

from __future__ import annotations

import io
import re
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, case, delete, func, insert, select
from sqlalchemy.orm import Session

from feedback import audit, permissions, sqldates
from feedback.audit import Actor, Change
from feedback.db import utcnow
from feedback.errors import NotFound, ValidationFailed
from feedback.models import (
    AnalysisRun,
    Decision,
    Experiment,
    ImpactPanel,
    PanelRow,
    Recommendation,
    User,
)
from feedback.outcomes import queries as outcome_queries
from feedback.permissions import Action

METRICS = {
    "median_handling_seconds": "Median handling time (seconds)",
    "decisions": "Decisions",
    "override_rate": "Override rate",
    "accuracy": "Accuracy against outcomes",
    "throughput": "Decisions per active reviewer",
}


PANEL_UNITS = {"site": "Site", "site_reviewer": "Reviewer at a site"}


PERIODS = {"day": timedelta(days=1), "week": timedelta(days=7)}


CSV_REQUIRED = ("unit", "period", "value", "treated")


MAX_CSV_ROWS = 1_000_000


MAX_COVARIATES = 50  # as many as an analysis may use


COVARIATE_NAME = re.compile(r"^[\w.:-]{1,64}$")  # what an analysis may name (a Key)


TRUE_WORDS, FALSE_WORDS = {"1", "true", "yes", "y", "t"}, {"0", "false", "no", "n", "f"}


def handling_seconds(session: Session) -> ColumnElement[Any]:
    """Seconds from opening a case to deciding it, in SQL."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", Decision.decided_at - Decision.opened_at)
    return (func.julianday(Decision.decided_at) - func.julianday(Decision.opened_at)) * 86400.0


def _median(session: Session, expr: ColumnElement[float]) -> ColumnElement[float]:
    if session.get_bind().dialect.name == "postgresql":
        return func.percentile_cont(0.5).within_group(expr)
    return func.median(expr)


def platform_frame(session: Session, model_id: int, unit: str, period: str) -> pd.DataFrame:
    """Per unit and period: decisions, median handling time, override rate, accuracy, reviewers (one GROUP BY)."""
    if unit not in PANEL_UNITS or period not in PERIODS:
        raise ValidationFailed("the panel is invalid", {"unit": "site or site_reviewer", "period": "day or week"})
    start = sqldates.period_start(session, Decision.decided_at, period).label("period")
    label = outcome_queries.first_label()
    correct = case((label.is_(None), None), (Decision.final_action == label, 1.0), else_=0.0)
    overridden = case((Decision.action == "override", 1.0), (Decision.action == "accept", 0.0), else_=None)
    keys = [Recommendation.site, start] + ([Decision.reviewer_id] if unit == "site_reviewer" else [])
    query = (
        select(
            *keys,
            func.count().label("decisions"),
            _median(session, handling_seconds(session)).label("median_handling_seconds"),
            func.avg(overridden).label("override_rate"),
            func.avg(correct).label("accuracy"),
            func.count(func.distinct(Decision.reviewer_id)).label("reviewers"),
        )
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .where(Decision.model_id == model_id)
        .group_by(*keys)
    )
    frame = pd.DataFrame(session.execute(query).mappings().all())
    if frame.empty:
        return frame
    if unit == "site":
        frame["unit"] = frame["site"]
    else:  # a stored panel is read by analysts and model owners: reviewers by pseudonym, never by name
        frame["unit"] = frame["site"] + " · " + frame["reviewer_id"].map(permissions.pseudonym)
    frame["throughput"] = frame["decisions"] / frame["reviewers"]
    for column in ("median_handling_seconds", "override_rate", "accuracy"):
        frame[column] = frame[column].astype(float)
    return frame


def build_platform_panel(
    session: Session, actor: User, *, experiment_id: int, metric: str, unit: str = "site", period: str = "week"
) -> tuple[ImpactPanel, list[str]]:
    """Store the panel of a staggered rollout's model; returns it and the units left out as unbalanced."""
    permissions.require(actor, Action.RUN_IMPACT)
    experiment = session.get(Experiment, experiment_id)
    if experiment is None:
        raise NotFound(f"no experiment {experiment_id}")
    fields = {}
    if experiment.kind != "staggered":
        fields["experiment_id"] = "panels are built for staggered rollouts; A/B tests are analysed per decision"
    if metric not in METRICS:
        fields["metric"] = "must be one of " + ", ".join(METRICS)
    if unit not in PANEL_UNITS:
        fields["unit"] = "must be site or site_reviewer"
    if period not in PERIODS:
        fields["period"] = "must be day or week"
    if fields:
        raise ValidationFailed("the panel is invalid", fields)
    frame = platform_frame(session, experiment.model_id, unit, period)
    # The current period is still filling up: leave it out.
    current = pd.Timestamp(utcnow().date()) - (
        pd.Timedelta(days=utcnow().weekday()) if period == "week" else pd.Timedelta(0)
    )
    frame = frame[pd.to_datetime(frame["period"]) < current] if not frame.empty else frame
    frame = frame.dropna(subset=[metric]) if not frame.empty else frame
    if frame.empty:
        raise ValidationFailed("no data", {"metric": "no finished period has data for this metric"})
    go_live = {s.site: s.go_live_at for s in experiment.sites}
    frame = frame[frame["site"].isin(go_live)]
    periods = sorted(frame["period"].unique())
    counts = frame.groupby("unit")["period"].nunique()
    dropped = sorted(counts.index[counts < len(periods)])
    frame = frame[~frame["unit"].isin(dropped)]
    length = PERIODS[period]

    def treated(row: Any) -> bool:
        when = go_live.get(row.site)
        start = datetime.fromisoformat(row.period).replace(tzinfo=when.tzinfo) if when else None
        return when is not None and start is not None and when < start + length

    table = pd.DataFrame(
        {
            "unit": frame["unit"],
            "label": frame["period"],
            "value": frame[metric].astype(float),
            "treated": [treated(r) for r in frame.itertuples()],
        }
    )
    table["period"] = table["label"].map({p: i + 1 for i, p in enumerate(periods)})
    name = f"{experiment.name}: {METRICS[metric].lower()} per {PANEL_UNITS[unit].lower()} and {period}"
    panel = store_panel(
        session,
        actor,
        frame=table,
        name=name,
        source="platform",
        metric=metric,
        period=period,
        covariates=[],
        experiment_id=experiment.id,
    )
    return panel, dropped


def parse_panel_csv(raw: bytes) -> tuple[pd.DataFrame, list[str]]:
    """Read and check an uploaded panel; raises ValidationFailed listing every problem found.

    Columns: unit, period (integers or ISO dates), value (a number), treated (0/1), and any
    further numeric columns as covariates.
    """
    frame, covariates = _read_table(raw)
    return _checked_rows(frame, covariates), covariates


def _read_table(raw: bytes) -> tuple[pd.DataFrame, list[str]]:
    """The CSV as text columns, with its required and covariate columns checked."""
    if not raw.strip():
        raise ValidationFailed("the file is empty", {"file": "the file is empty"})
    if b"\x00" in raw[:4096]:
        raise ValidationFailed("not a CSV file", {"file": "this looks like a binary file, not a CSV"})
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValidationFailed("not a CSV file", {"file": "the file is not UTF-8 text"}) from None
    try:
        frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise ValidationFailed("not a CSV file", {"file": f"could not read it as CSV: {exc}"}) from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in CSV_REQUIRED if c not in frame.columns]
    if missing or len(set(frame.columns)) != len(frame.columns):
        found = ", ".join(frame.columns) or "none"
        problem = f"missing {', '.join(missing)}" if missing else "a column name appears twice"
        raise ValidationFailed(
            "wrong columns", {"columns": f"{problem}; need {', '.join(CSV_REQUIRED)} (found {found})"}
        )
    if len(frame) > MAX_CSV_ROWS:
        raise ValidationFailed("too many rows", {"file": f"at most {MAX_CSV_ROWS:,} rows"})
    if frame.empty:
        raise ValidationFailed("no rows", {"file": "the file has a header but no rows"})
    covariates = [c for c in frame.columns if c not in CSV_REQUIRED]
    # Covariates are stored as JSON keys and named in analyses: bounded like any API body's keys.
    if len(covariates) > MAX_COVARIATES:
        raise ValidationFailed("too many columns", {"columns": f"at most {MAX_COVARIATES} covariate columns"})
    if unnamed := [c for c in covariates if not COVARIATE_NAME.match(c)]:
        shown = ", ".join(c[:40] for c in unnamed[:3])
        raise ValidationFailed(
            "bad column names",
            {"columns": f"covariate names are letters, digits, _ . : - (at most 64), not {shown}"},
        )
    return frame, covariates


def _checked_rows(frame: pd.DataFrame, covariates: list[str]) -> pd.DataFrame:
    """Typed rows (periods ranked 1, 2, …), or every problem found with the lines it is on."""
    problems: dict[str, str] = {}
    line = frame.index.to_series() + 2  # the header is line 1

    def lines(mask: pd.Series) -> str:
        bad = line[mask].tolist()
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return ", ".join(str(n) for n in bad[:5]) + more

    frame["unit"] = frame["unit"].str.strip()
    if (blank := frame["unit"] == "").any():
        problems["unit"] = f"blank on line(s) {lines(blank)}"
    for column in ("value", *covariates):
        numbers = pd.to_numeric(frame[column], errors="coerce")
        if (bad := ~np.isfinite(numbers.to_numpy(float))).any():
            problems[column] = f"not a number on line(s) {lines(pd.Series(bad, index=frame.index))}"
        frame[column] = numbers
    flags = frame["treated"].str.strip().str.lower()
    if (bad := ~flags.isin(TRUE_WORDS | FALSE_WORDS)).any():
        problems["treated"] = f"must be 0 or 1, not on line(s) {lines(bad)}"
    frame["treated"] = flags.isin(TRUE_WORDS)
    raw_period = frame["period"].str.strip()
    as_int = pd.to_numeric(raw_period, errors="coerce")
    as_date = pd.to_datetime(raw_period, errors="coerce", format="ISO8601")
    if as_int.notna().all() and (as_int == as_int.round()).all():
        frame["label"], order = raw_period, as_int.astype(int)
    elif as_date.notna().all():
        frame["label"], order = as_date.dt.strftime("%Y-%m-%d"), as_date
    else:
        bad = as_int.isna() & as_date.isna()
        problems["period"] = "use whole numbers or ISO dates (YYYY-MM-DD) throughout" + (
            f"; unreadable on line(s) {lines(bad)}" if bad.any() else ""
        )
        order = raw_period
    if problems:
        raise ValidationFailed("the file has problems", problems)
    frame["period"] = order.rank(method="dense").astype(int)
    duplicated = frame.duplicated(["unit", "period"], keep=False)
    if duplicated.any():
        problems["rows"] = f"the same unit and period appear twice on line(s) {lines(duplicated)}"
    ordered = frame.sort_values(["unit", "period"])
    switched_off = ordered["treated"].lt(ordered.groupby("unit")["treated"].cummax())
    if switched_off.any():
        first = ordered[switched_off].iloc[0]
        units = ordered.loc[switched_off, "unit"].unique()
        problems["treated"] = (
            f"treatment must not switch off: unit {first['unit']} is untreated again in period {first['label']}"
            + (f" ({len(units)} units do this)" if len(units) > 1 else "")
        )
    if frame["treated"].all() or not frame["treated"].any():
        problems.setdefault("treated", "some units must be untreated in some periods, and some treated")
    if problems:
        raise ValidationFailed("the file has problems", problems)
    return frame[["unit", "period", "label", "value", "treated", *covariates]]


def upload_panel(session: Session, actor: User, *, name: str, raw: bytes) -> ImpactPanel:
    """Validate an uploaded CSV and store it as a panel (all or nothing)."""
    permissions.require(actor, Action.RUN_IMPACT)
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise ValidationFailed("the panel is invalid", {"name": "give the panel a name of at most 200 characters"})
    frame, covariates = parse_panel_csv(raw)
    return store_panel(
        session,
        actor,
        frame=frame,
        name=name,
        source="upload",
        metric="value",
        period="uploaded",
        covariates=covariates,
    )


def store_panel(
    session: Session,
    actor: User,
    *,
    frame: pd.DataFrame,
    name: str,
    source: str,
    metric: str,
    period: str,
    covariates: list[str],
    experiment_id: int | None = None,
) -> ImpactPanel:
    """Write the panel and its rows in one transaction, audited."""
    panel = ImpactPanel(
        name=name,
        source=source,
        metric=metric,
        period=period,
        covariates=covariates,
        experiment_id=experiment_id,
        units=int(frame["unit"].nunique()),
        periods=int(frame["period"].nunique()),
        created_by_id=actor.id,
    )
    session.add(panel)
    session.flush()
    rows = [
        {
            "panel_id": panel.id,
            "unit": str(r["unit"]),
            "period": int(r["period"]),
            "label": str(r["label"]),
            "value": float(r["value"]),
            "treated": bool(r["treated"]),
            "covariates": {c: float(r[c]) for c in covariates},
        }
        for r in frame.to_dict("records")
    ]
    for start in range(0, len(rows), 5000):
        session.execute(insert(PanelRow), rows[start : start + 5000])
    audit.record(
        session,
        Actor(actor.id, actor.email),
        [Change("impact_panel.created", "impact_panel", panel.id, {"name": name, "source": source, "rows": len(rows)})],
    )
    session.commit()
    return panel


def delete_panel(session: Session, actor: User, *, panel_id: int) -> None:
    """Delete an uploaded panel with its rows and analyses (analysts and admins)."""
    permissions.require(actor, Action.RUN_IMPACT)
    panel = session.get(ImpactPanel, panel_id)
    if panel is None:
        raise NotFound(f"no panel {panel_id}")
    session.execute(delete(AnalysisRun).where(AnalysisRun.panel_id == panel_id))
    session.execute(delete(PanelRow).where(PanelRow.panel_id == panel_id))
    session.delete(panel)
    audit.record(session, Actor(actor.id, actor.email), [Change("impact_panel.deleted", "impact_panel", panel_id)])
    session.commit()


def panel_frame(session: Session, panel: ImpactPanel) -> pd.DataFrame:
    """The stored rows with each unit's cohort (first treated period; 0 when never treated)."""
    rows = session.execute(
        select(PanelRow.unit, PanelRow.period, PanelRow.label, PanelRow.value, PanelRow.treated, PanelRow.covariates)
        .where(PanelRow.panel_id == panel.id)
        .order_by(PanelRow.unit, PanelRow.period)
    ).all()
    frame = pd.DataFrame(rows, columns=["unit", "period", "label", "value", "treated", "covariates"])
    for name in panel.covariates:
        frame[name] = [c.get(name) for c in frame["covariates"]]
    frame = frame.drop(columns="covariates")
    first = frame[frame["treated"]].groupby("unit")["period"].min()
    frame["cohort"] = frame["unit"].map(first).fillna(0).astype(int)
    return frame


def panels(session: Session, experiment_id: int | None = None) -> list[ImpactPanel]:
    """Panels, newest first (those built for one experiment, when given)."""
    query = select(ImpactPanel).order_by(ImpactPanel.id.desc())
    if experiment_id is not None:
        query = query.where(ImpactPanel.experiment_id == experiment_id)
    return list(session.scalars(query))
