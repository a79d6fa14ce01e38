"""Override analytics in SQL: counts grouped in the database, never row by row in Python."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Integer, Select, case, cast, func, select
from sqlalchemy.orm import Session, contains_eager

from feedback import paging, permissions
from feedback.db import readable_json, utcnow, valid_json
from feedback.errors import ValidationFailed
from feedback.json_input import SEGMENT_MAX_KEYS
from feedback.models import Decision, DecisionCount, ModelVersion, Recommendation, User
from feedback.params import FIRST_DAY, LAST_DAY

BREAKDOWNS = ("model_version", "site", "reason_code", "reviewer", "confidence_decile")
SEGMENT_ATTR = re.compile(r"^segment\.([A-Za-z0-9_]{1,64})$")
BREAKDOWN_PATTERN = "(?:" + "|".join(BREAKDOWNS) + r"|segment\.[A-Za-z0-9_]{1,64})"  # for query parameters
BREAKDOWN_HINT = f"must be one of {', '.join(BREAKDOWNS)} or segment.ATTRIBUTE"


@dataclass(frozen=True)
class Window:
    """Which decisions an override analysis covers: one model, a date range, maybe one version."""

    model_id: int
    start: datetime
    end: datetime
    version_id: int | None = None


def window(model_id: int, date_from: str | None, date_to: str | None, version_id: int | None = None) -> Window:
    """Parse an inclusive date range (default: the last 30 days), naming the bad field on error.

    `from` after `to` is an empty range, not an error: a rule between two parameters cannot be
    written in the API's schema, and the decisions in such a range are, truthfully, none.
    """
    fields = {}
    today = utcnow().date()
    parsed: dict[str, date] = {}
    for name, raw, default in (("from", date_from, today - timedelta(days=29)), ("to", date_to, today)):
        try:
            parsed[name] = date.fromisoformat(raw) if raw else default
        except ValueError:
            fields[name] = "must be a date like 2026-01-31"
    for name, day in parsed.items():
        if not FIRST_DAY <= day <= LAST_DAY:  # the window adds a day to `to`: far-off years would overflow
            fields[name] = f"must be a date from {FIRST_DAY} to {LAST_DAY}"
    if fields:
        raise ValidationFailed("the date range is invalid", fields)
    start = datetime.combine(parsed["from"], time.min).replace(tzinfo=utcnow().tzinfo)
    end = datetime.combine(parsed["to"] + timedelta(days=1), time.min).replace(tzinfo=utcnow().tzinfo)
    return Window(model_id, start, end, version_id)


def _scope(query: Select[*tuple[Any, ...]], w: Window) -> Select[*tuple[Any, ...]]:
    """Restrict to the window's model, dates and version; only decisions where the AI was shown."""
    query = query.where(
        Decision.model_id == w.model_id,
        Decision.decided_at >= w.start,
        Decision.decided_at < w.end,
        Decision.ai_shown.is_(True),
    )
    if w.version_id:
        query = query.where(Decision.model_version_id == w.version_id)
    return query


def dimension_of(by: str) -> str:
    """Check a breakdown name: one of BREAKDOWNS or segment.ATTRIBUTE."""
    if by in BREAKDOWNS or SEGMENT_ATTR.match(by):
        return by
    raise ValidationFailed("unknown breakdown", {"by": BREAKDOWN_HINT})


def breakdown_key(by: str) -> Any:
    """The raw-row SQL expression behind a breakdown (for drilling down to the cases)."""
    dimension_of(by)
    if by == "model_version":
        return ModelVersion.version
    if by == "reviewer":
        return User.name
    if by == "reason_code":
        return Decision.reason_code
    if by == "site":
        return Recommendation.site
    if by == "confidence_decile":
        return case(
            (Recommendation.confidence >= 1, 9), else_=cast(func.floor(Recommendation.confidence * 10), Integer)
        )
    return valid_json(Recommendation.segment)[by.split(".", 1)[1]].as_string()


def _rolled(w: Window, dimension: str) -> Select[*tuple[Any, ...]]:
    """Sums over the daily counts of one dimension in the window."""
    query = select(
        func.sum(DecisionCount.accepts + DecisionCount.overrides + DecisionCount.escalations).label("decisions"),
        func.sum(DecisionCount.accepts).label("accepts"),
        func.sum(DecisionCount.overrides).label("overrides"),
        func.sum(DecisionCount.escalations).label("escalations"),
    ).where(
        DecisionCount.model_id == w.model_id,
        DecisionCount.dimension == dimension,
        DecisionCount.day >= w.start.date().isoformat(),
        DecisionCount.day < w.end.date().isoformat(),
    )
    if w.version_id:
        query = query.where(DecisionCount.model_version_id == w.version_id)
    return query


def _ints(row: dict[str, Any]) -> dict[str, Any]:
    """Sums come back as None (no rows) or Decimal on some backends: make them ints."""
    return {
        k: (int(v or 0) if k in ("decisions", "accepts", "overrides", "escalations") else v) for k, v in row.items()
    }


def override_counts(session: Session, w: Window, by: str, viewer: User | None = None) -> list[dict[str, Any]]:
    """Per group: decisions, accepts, overrides and escalations, from the daily counts (a few rows per day)."""
    dimension = dimension_of(by)
    query = _rolled(w, dimension).add_columns(DecisionCount.key.label("key")).group_by(DecisionCount.key)
    rows = [_ints(dict(r._mapping)) for r in session.execute(query)]
    if by == "reviewer":
        _name_reviewers(session, rows, viewer)
    if by == "confidence_decile":
        for row in rows:
            low = int(row["key"])
            row["key"] = f"{low / 10:.1f}–{(low + 1) / 10:.1f}"
    if by == "reason_code":
        # A reason's rate is its overrides over all accepts and overrides, so the reasons add up
        # to the total override rate.
        total = override_totals(session, w)
        rows = [
            {
                **row,
                "decisions": total["decisions"],
                "accepts": total["accepts"] + total["overrides"] - row["overrides"],
                "escalations": 0,
            }
            for row in rows
            if row["overrides"]
        ]
    return sorted(rows, key=lambda r: r["key"])


def override_totals(session: Session, w: Window) -> dict[str, int]:
    """Totals over the whole window (every decision counts once under model_version)."""
    return _ints(dict(session.execute(_rolled(w, "model_version")).one()._mapping))


def action_matrix(session: Session, w: Window) -> list[dict[str, Any]]:
    """Decisions per recommended action and final action (escalations have no final action yet)."""
    query = _rolled(w, "action_pair").add_columns(DecisionCount.key.label("pair")).group_by(DecisionCount.key)
    cells = []
    for row in session.execute(query):
        recommended, final = row.pair.split("→", 1)
        cells.append({"recommended": recommended, "final": final, "decisions": int(row.decisions or 0)})
    return sorted(cells, key=lambda c: (c["recommended"], c["final"]))


def daily_override_counts(session: Session, w: Window) -> list[dict[str, Any]]:
    """Per version and UTC day: accepts and overrides (for the p-chart)."""
    query = (
        _rolled(w, "model_version")
        .add_columns(DecisionCount.key.label("version"), DecisionCount.day.label("day"))
        .group_by(DecisionCount.key, DecisionCount.day)
        .order_by(DecisionCount.key, DecisionCount.day)
    )
    return [
        {"version": r.version, "day": r.day, "accepts": int(r.accepts or 0), "overrides": int(r.overrides or 0)}
        for r in session.execute(query)
    ]


def accuracy_counts(
    session: Session, w: Window, by: str | None = None, viewer: User | None = None
) -> list[dict[str, Any]]:
    """On decided cases with an outcome: how often the AI and the final decision were right.

    For overrides also: the human corrected a wrong AI, or overrode a right one. Read from the
    daily counts, which each case's first label outcome updated when it arrived.
    """
    if by not in (None, "model_version", "reason_code", "reviewer"):
        raise ValidationFailed("unknown grouping", {"by": "must be model_version, reason_code or reviewer"})
    columns = ("with_outcome", "ai_right", "final_right", "outcome_overrides", "corrected", "overrode_right")
    query = select(*(func.sum(getattr(DecisionCount, c)).label(c) for c in columns)).where(
        DecisionCount.model_id == w.model_id,
        DecisionCount.dimension == (by or "model_version"),
        DecisionCount.day >= w.start.date().isoformat(),
        DecisionCount.day < w.end.date().isoformat(),
    )
    if w.version_id:
        query = query.where(DecisionCount.model_version_id == w.version_id)
    if by:
        query = query.add_columns(DecisionCount.key.label("key")).group_by(DecisionCount.key)
    rows = []
    for r in session.execute(query):
        row = {c: int(getattr(r, c) or 0) for c in columns}
        row["overrides"] = row.pop("outcome_overrides")
        if by:
            row["key"] = r.key
        if row["with_outcome"] or not by:
            rows.append(row)
    if by == "reviewer":
        _name_reviewers(session, rows, viewer)
    return sorted(rows, key=lambda r: str(r.get("key", "")))


def _name_reviewers(session: Session, rows: list[dict[str, Any]], viewer: User | None, field: str = "key") -> None:
    """Replace reviewer ids with what the viewer may see: names for admins, else pseudonyms."""
    ids = {int(str(r[field]).split(":")[0]) for r in rows}
    names = permissions.labels(session, viewer, ids)
    for row in rows:
        reviewer_id = int(str(row[field]).split(":")[0])
        row[field] = names.get(reviewer_id) or permissions.pseudonym(reviewer_id)


def reviewer_speed(session: Session, w: Window, viewer: User | None = None) -> list[dict[str, Any]]:
    """Per reviewer and log-spaced bucket of seconds to decide: decisions, accepts and overrides."""
    query = _rolled(w, "reviewer_speed").add_columns(DecisionCount.key.label("key")).group_by(DecisionCount.key)
    rows = []
    for r in session.execute(query):
        reviewer_id, bucket = r.key.split(":")
        rows.append(
            {
                "reviewer": reviewer_id,
                "bucket": int(bucket),
                "decisions": int(r.decisions or 0),
                "accepts": int(r.accepts or 0),
                "overrides": int(r.overrides or 0),
            }
        )
    _name_reviewers(session, rows, viewer, "reviewer")
    return sorted(rows, key=lambda r: (r["reviewer"], r["bucket"]))


def cases_behind(
    session: Session,
    w: Window,
    by: str,
    key: str,
    *,
    overrides_only: bool = True,
    after: int | None = None,
    limit: int = paging.PAGE_SIZE,
    viewer: User | None = None,
) -> paging.Page:
    """The decided cases behind one cell of a breakdown (drill-down), a page at a time, newest first.

    Each row is (Recommendation, decision id), with the decision and its reviewer loaded.
    """
    query = select(Recommendation).join(Decision, Decision.recommendation_id == Recommendation.id)
    if by == "action_pair":  # a cell of the recommended -> final action matrix
        recommended, _, final = key.partition("→")
        query = query.where(Recommendation.recommended_action == recommended).where(
            Decision.final_action.is_(None) if final == "(escalated)" else Decision.final_action == final
        )
        query = _scope(query, w)
    elif by == "reviewer":
        # The cell is the reviewer as the viewer saw them (a pseudonym unless an admin).
        reviewers = select(Decision.reviewer_id).where(Decision.model_id == w.model_id).distinct()
        reviewer_id = permissions.person_with_label(session, viewer, key, reviewers)
        query = _scope(query.where(Decision.reviewer_id == (reviewer_id or 0)), w)
    else:
        expr = breakdown_key(by)
        if by == "model_version":
            query = query.join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        value: Any = key
        if by == "confidence_decile":
            try:
                value = round(float(key.split("–")[0]) * 10)
            except ValueError:
                raise ValidationFailed("unknown decile", {"key": "must look like 0.3–0.4"}) from None
        query = _scope(query.where(expr == value), w)
    if overrides_only and by != "action_pair":
        query = query.where(Decision.action == "override")
    loaded = (contains_eager(Recommendation.decision).joinedload(Decision.reviewer),)
    return paging.newest_first(session, query, after=after, limit=limit, options=loaded)


def segment_keys(session: Session, model_id: int, sample: int = 200, most: int = SEGMENT_MAX_KEYS) -> list[str]:
    """The `most` segment attributes most common in a model's recent cases (for the breakdown menu).

    Bounded, and only names a breakdown accepts, so one case with thousands of keys cannot
    flood the menu.
    """
    segments = session.scalars(
        select(readable_json(Recommendation.segment))
        .where(Recommendation.model_id == model_id)
        .order_by(Recommendation.id.desc())
        .limit(sample)
    ).all()
    seen = Counter(key for segment in segments if isinstance(segment, dict) for key in segment)
    common = sorted(seen.items(), key=lambda pair: (-pair[1], pair[0]))
    named = [key for key, _ in common if SEGMENT_ATTR.match(f"segment.{key}")]
    return sorted(named[:most])
