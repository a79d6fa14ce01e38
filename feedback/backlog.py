"""The retraining backlog: over-override patterns mined per model version, tracked as work items.

Mining counts decisions per combination of condition values in one SQL GROUP BY, then hands
that aggregated frame to `analytics.patterns`. Each condition knows both its GROUP BY
expression and its WHERE clause, so an item's cases, its chart and its verification on a newer
version all select exactly the subgroup that was mined.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, Table, and_, case, func, select, true, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError

from analytics import patterns as mining
from analytics.overrides import compare_rates
from feedback import audit, paging, permissions, queries, webhooks
from feedback.audit import Actor, Change
from feedback.db import json_float, readable_json, sqlite_write_intent, utcnow, valid_json
from feedback.errors import Conflict, NotFound, Problems
from feedback.json_input import SEGMENT_MAX_KEYS, finite_or_none
from feedback.models import (
    BACKLOG_STATUSES,
    BacklogItem,
    BacklogRefresh,
    Decision,
    Model,
    ModelVersion,
    Recommendation,
    User,
)
from feedback.permissions import Action
from feedback.wording import humanise, humanise_value

SAMPLE = 5000  # recent cases read to discover segment and feature conditions
MAX_CATEGORIES = 20
MAX_MINED_FEATURES = 64  # the feature keys most common in the sample are mined, no more


@dataclass(frozen=True)
class Dimension:
    """One condition: how to group by it and how to select one of its values."""

    name: str  # site, recommended_action, confidence, segment.KEY, feature.KEY
    kind: str  # category, boolean or range
    edges: tuple[float, ...] = ()  # range bins: [edges[i], edges[i+1])

    def _value(self) -> Any:
        if self.name == "site":
            return Recommendation.site
        if self.name == "recommended_action":
            return Recommendation.recommended_action
        if self.name == "confidence":
            return Recommendation.confidence
        column, key = self.name.split(".", 1)
        raw = Recommendation.segment if column == "segment" else Recommendation.features
        if self.kind == "range":
            return json_float(raw, key)
        data = valid_json(raw)
        if self.kind == "boolean":
            return data[key].as_boolean()
        return data[key].as_string()

    def group_expr(self) -> ColumnElement[Any]:
        """The value label of a case, in SQL (NULL when the case lacks it)."""
        value = self._value()
        if self.kind == "boolean":
            return case((value.is_(True), "yes"), (value.is_(False), "no"), else_=None)
        if self.kind != "range":
            return cast(ColumnElement[Any], value)
        whens = [(value < high, _range_label(low, high)) for low, high in zip(self.edges, self.edges[1:], strict=False)]
        return case(*whens, else_=None) if whens else value

    def clause(self, condition: dict[str, Any]) -> ColumnElement[bool]:
        """SQL selecting the cases that meet one stored condition."""
        value = self._value()
        if self.kind == "boolean":
            return cast(ColumnElement[bool], value.is_(condition["value"] == "yes"))
        if self.kind == "range":  # an open end is stored as null
            low, high = condition.get("low"), condition.get("high")
            bounds = ([value >= low] if low is not None else []) + ([value < high] if high is not None else [])
            return and_(true(), *bounds)
        return cast(ColumnElement[bool], value == condition["value"])

    def condition(self, label: str) -> dict[str, Any]:
        """The stored form of one mined value."""
        spec: dict[str, Any] = {"dim": self.name, "kind": self.kind, "value": label}
        if self.kind == "range":
            for low, high in zip(self.edges, self.edges[1:], strict=False):
                if _range_label(low, high) == label:
                    # JSON has no infinities: an open end is null.
                    spec.update(low=None if math.isinf(low) else low, high=None if math.isinf(high) else high)
        return spec


def _range_label(low: float, high: float) -> str:
    if math.isinf(low):
        return f"< {high:,.4g}"
    if math.isinf(high):
        return f"≥ {low:,.4g}"
    return f"{low:,.4g}–{high:,.4g}"


def dimension_of(condition: dict[str, Any]) -> Dimension:
    """The dimension a stored condition belongs to (ranges carry their own bounds)."""
    if condition.get("kind") != "range":
        return Dimension(condition["dim"], condition.get("kind", "category"), ())
    low, high = condition.get("low"), condition.get("high")
    edges = (-math.inf if low is None else low, math.inf if high is None else high)
    return Dimension(condition["dim"], "range", edges)


def dimensions(session: Session, version_id: int) -> list[Dimension]:
    """Conditions worth mining for a version, discovered from its recent cases."""
    rows = session.execute(
        select(
            readable_json(Recommendation.segment).label("segment"),
            readable_json(Recommendation.features).label("features"),
        )
        .join(Decision, Decision.recommendation_id == Recommendation.id)
        .where(Decision.model_version_id == version_id)
        .order_by(Decision.id.desc())
        .limit(SAMPLE)
    ).all()
    found = [
        Dimension("site", "category"),
        Dimension("recommended_action", "category"),
        Dimension("confidence", "range", (-math.inf, 0.5, 0.6, 0.7, 0.8, 0.9, math.inf)),
    ]
    for column, most in (("segment", SEGMENT_MAX_KEYS), ("features", MAX_MINED_FEATURES)):
        values = [v for r in rows if isinstance(v := getattr(r, column), dict)]
        # Only the most common keys: a few cases with thousands of keys must not widen the search.
        seen = Counter(key for v in values for key in v)
        keys = sorted(key for key, _ in sorted(seen.items(), key=lambda pair: (-pair[1], pair[0]))[:most])
        frame = pd.DataFrame([{k: finite_or_none(v.get(k)) for k in keys} for v in values], columns=keys)
        prefix = "segment" if column == "segment" else "feature"
        for key in keys:
            values = frame[key].dropna()
            if values.empty:
                continue
            if values.map(lambda v: isinstance(v, bool)).all():
                found.append(Dimension(f"{prefix}.{key}", "boolean"))
            elif values.map(lambda v: isinstance(v, int | float) and not isinstance(v, bool)).all():
                quartiles = np.unique(np.quantile(values.astype(float), [0.25, 0.5, 0.75]))
                if len(quartiles):
                    found.append(Dimension(f"{prefix}.{key}", "range", (-math.inf, *quartiles.tolist(), math.inf)))
            elif values.astype(str).nunique() <= MAX_CATEGORIES:
                found.append(Dimension(f"{prefix}.{key}", "category"))
    return found


def cell_counts(session: Session, version_id: int, dims: Sequence[Dimension]) -> pd.DataFrame:
    """Counts per combination of condition values for a version's countersigned cases (one GROUP BY)."""
    label = queries.first_label()
    overridden = Decision.action == "override"
    known = overridden & label.is_not(None)
    exprs = [d.group_expr().label(f"c{i}") for i, d in enumerate(dims)]
    query = (
        select(
            *exprs,
            func.count().label("n"),
            func.sum(case((overridden, 1), else_=0)).label("overrides"),
            func.sum(case((known, 1), else_=0)).label("override_outcomes"),
            func.sum(case((known & (label != Recommendation.recommended_action), 1), else_=0)).label(
                "override_ai_wrong"
            ),
        )
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .where(
            Decision.model_version_id == version_id,
            Decision.ai_shown.is_(True),
            Decision.action.in_(("accept", "override")),
        )
        .group_by(*[e.element for e in exprs])
    )
    return _named(pd.DataFrame(session.execute(query).mappings().all()), dims)


def pattern_clause(conditions: Sequence[dict[str, Any]]) -> ColumnElement[bool]:
    """WHERE clause (on recommendations) for an item's subgroup."""
    return and_(*(dimension_of(c).clause(c) for c in conditions))


def describe(conditions: Sequence[dict[str, Any]], model: Model | None = None) -> str:
    """Plain words for a subgroup in the model's labels: "where claim band is over £10k at site Leeds"."""
    parts, where = [], []
    for c in conditions:
        dim, value = c["dim"], c["value"]
        if dim == "site":
            where.append(f"at site {value}")
        elif dim == "recommended_action":
            label = model.action_label(value) if model is not None else humanise(value)
            parts.append(f"when it recommends “{label}”")
        elif dim == "confidence":
            parts.append(f"at confidence {value}")
        else:
            attribute = dim.split(".", 1)[1]
            name = (model.segment_label(attribute) if model is not None else humanise(attribute)).lower()
            shown = model.segment_value_label(attribute, value) if model is not None else humanise_value(value)
            parts.append(f"where {name} is {shown}")
    if not parts:
        return " ".join(where)
    return " and ".join(parts) + (" " + " ".join(where) if where else "")


@dataclass(frozen=True)
class RefreshSummary:
    """What a refresh changed: items created, updated and retired."""

    created: int
    updated: int
    retired: int


@dataclass(frozen=True)
class Mined:
    """One pattern found by mining: its identity (version, pattern key) and its statistics."""

    version_id: int
    pattern_key: str
    stats: dict[str, Any]


# The columns a refresh writes. Triage (status, owner, notes, verification) is people's work and
# is never among them, so a refresh and a triage change never overwrite or refuse each other.
MINED_COLUMNS = (
    "conditions",
    "title",
    "cases",
    "overrides",
    "rate",
    "rate_low",
    "rate_high",
    "baseline",
    "excess",
    "q_value",
    "wrong_share",
    "priority",
    "top_final_action",
    "top_reason",
)


def refresh(
    session: Session, actor: Actor, model_key: str, *, min_cases: int = 30, alpha: float = 0.05
) -> RefreshSummary:
    """Mine every version of a model and create or update its backlog items (never duplicating one)."""
    model = _model_to_refresh(session, actor, model_key)
    mined = mine(session, model.id, min_cases=min_cases, alpha=alpha)
    return apply_mined(session, actor, model.id, mined)


def _model_to_refresh(session: Session, actor: Actor, model_key: str) -> Model:
    model = session.scalars(select(Model).where(Model.key == model_key)).first()
    if model is None:
        raise NotFound(f"no model {model_key}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=model.id)
    return model


def mine(
    session: Session,
    model_id: int,
    *,
    min_cases: int = 30,
    alpha: float = 0.05,
    progress: Callable[[float, str], None] | None = None,
) -> list[Mined]:
    """Mine every version of a model: reads only, so triage and reviews go on while it runs."""
    model = session.get(Model, model_id)
    if model is None:
        raise NotFound(f"no model {model_id}")
    reasons = {r["code"]: r["label"] for r in model.reason_codes}
    versions = session.execute(
        select(ModelVersion.id, ModelVersion.version).where(ModelVersion.model_id == model_id).order_by(ModelVersion.id)
    ).all()
    mined: list[Mined] = []
    for done, (version_id, label) in enumerate(versions):
        if progress:
            progress(done / (len(versions) + 1), f"mining {label} ({done + 1} of {len(versions)} versions)")
        dims = dimensions(session, version_id)
        cells = cell_counts(session, version_id, dims)
        if cells.empty:
            continue
        by_name = {d.name: d for d in dims}
        found = mining.mine(cells, [d.name for d in dims], min_cases=min_cases, alpha=alpha)
        overrides = _override_pairs(session, version_id, dims) if found else pd.DataFrame()
        for pattern in found:
            conditions = [by_name[name].condition(value) for name, value in pattern.conditions]
            final, reason = _top_pair(overrides, pattern.conditions)
            title = (
                f"{label} is overridden {pattern.ratio:.1f}× more {_for(describe(conditions, model))}"
                + (f": '{reasons.get(reason, reason)}'" if reason else "")
                + f", {pattern.n:,} cases"
            )
            stats = {
                "conditions": conditions,
                "title": title,
                "cases": pattern.n,
                "overrides": pattern.overrides,
                "rate": pattern.rate,
                "rate_low": pattern.rate_low,
                "rate_high": pattern.rate_high,
                "baseline": pattern.baseline,
                "excess": pattern.excess,
                "q_value": pattern.q_value,
                "wrong_share": pattern.wrong_share,
                "priority": pattern.priority,
                "top_final_action": final,
                "top_reason": reason,
            }
            mined.append(Mined(version_id, pattern.key, stats))
    return mined


def apply_mined(session: Session, actor: Actor, model_id: int, mined: Sequence[Mined]) -> RefreshSummary:
    """Write mined patterns in one short transaction, merging by identity (version, pattern key).

    An existing item gets the new statistics and nothing else: its status, owner and notes stay
    as people left them, even if they changed them while the mining ran. The statistics are
    written with a plain table UPDATE, which leaves the item's row_version alone, so a triage
    form opened before the refresh still saves.
    """
    table = cast(Table, BacklogItem.__table__)
    existing = {
        (row.model_version_id, row.pattern_key): row
        for row in session.execute(
            select(table.c.id, table.c.model_version_id, table.c.pattern_key, table.c.active).where(
                table.c.model_id == model_id
            )
        )
    }
    now = utcnow()
    seen: set[tuple[int, str]] = set()
    created: list[BacklogItem] = []
    updated = 0
    for found in mined:
        key = (found.version_id, found.pattern_key)
        seen.add(key)
        row = existing.get(key)
        if row is None:
            item = BacklogItem(
                model_id=model_id,
                model_version_id=found.version_id,
                pattern_key=found.pattern_key,
                active=True,
                refreshed_at=now,
                **found.stats,
            )
            session.add(item)
            created.append(item)
        else:
            stats = {name: found.stats[name] for name in MINED_COLUMNS}
            session.execute(update(table).where(table.c.id == row.id).values(**stats, active=True, refreshed_at=now))
            updated += 1
    retire = [row.id for key, row in existing.items() if key not in seen and row.active]
    if retire:
        session.execute(update(table).where(table.c.id.in_(retire)).values(active=False, refreshed_at=now))
    try:
        session.flush()
    except IntegrityError:
        # Another refresh of the same model won the race; its items stand, nothing is duplicated.
        session.rollback()
        raise Conflict("the backlog is being refreshed by someone else; try again in a moment") from None
    changes = [
        Change("backlog.item_created", "backlog_item", i.id, {"pattern": i.pattern_key, "title": i.title})
        for i in created
    ]
    changes.append(
        Change(
            "backlog.refreshed",
            "model",
            model_id,
            {"created": len(created), "updated": updated, "retired": len(retire)},
        )
    )
    audit.record(session, actor, changes)
    for item in created:
        webhooks.enqueue(session, "backlog.item_created", item_payload(item))
    session.commit()
    # Objects this session already holds must show the statistics just written.
    session.expire_all()
    webhooks.deliver_soon()
    return RefreshSummary(len(created), updated, len(retire))


# --- refreshes in the background ------------------------------------------------------------

REFRESH_STALE_AFTER = timedelta(minutes=5)  # progress is written per version, seconds apart


def refresh_interrupted(job: BacklogRefresh, now: datetime | None = None) -> bool:
    """A refresh that stopped reporting progress (its worker was restarted): shown as interrupted."""
    return job.status in ("queued", "running") and job.updated_at < (now or utcnow()) - REFRESH_STALE_AFTER


def latest_refresh(session: Session, model_id: int) -> BacklogRefresh | None:
    """The model's most recent backlog refresh, if any."""
    return session.scalars(
        select(BacklogRefresh)
        .where(BacklogRefresh.model_id == model_id)
        .order_by(BacklogRefresh.id.desc())
        .limit(1)
        .execution_options(populate_existing=True)
    ).first()


def get_refresh(session: Session, model_id: int, job_id: int) -> BacklogRefresh:
    """One of the model's refreshes, or NotFound."""
    job = session.get(BacklogRefresh, job_id, populate_existing=True)
    if job is None or job.model_id != model_id:
        raise NotFound(f"no backlog refresh {job_id}")
    return job


def start_refresh(session: Session, user: User, model_key: str) -> tuple[BacklogRefresh, bool]:
    """Queue a refresh of a model's backlog; the caller hands its id to a background worker.

    One refresh per model at a time: while one is under way it is returned instead (with False,
    "not new"). One whose worker died does not block a new start.
    """
    model = _model_to_refresh(session, Actor(user.id, user.email), model_key)
    current = latest_refresh(session, model.id)
    if current is not None and current.status in ("queued", "running") and not refresh_interrupted(current):
        return current, False
    job = BacklogRefresh(model_id=model.id, created_by_id=user.id, message="waiting to start")
    session.add(job)
    session.commit()
    return job, True


def execute_refresh(session: Session, job_id: int, *, between: Callable[[], None] | None = None) -> None:
    """Run a queued refresh: mine (reads only, progress written as it goes), then write the items.

    A conflict fails the job; other errors are raised for the worker to retry. `between` runs
    after the mining and before the items are written (tests use it to triage at exactly that moment).
    """
    found = session.get(BacklogRefresh, job_id)
    if found is None:
        raise NotFound(f"no backlog refresh {job_id}")
    job: BacklogRefresh = found
    if job.status != "queued":
        raise Conflict(f"backlog refresh {job_id} is {job.status}")
    user = session.get(User, job.created_by_id) if job.created_by_id else None
    actor = Actor(user.id, user.email) if user else Actor(None, "background")

    def progress(fraction: float, message: str) -> None:
        session.commit()  # end the mining's read transaction before writing
        with write_intent():
            job.status, job.progress, job.message, job.updated_at = "running", fraction, message, utcnow()
            session.commit()

    try:
        progress(0.0, "starting")
        mined = mine(session, job.model_id, progress=progress)
        progress(0.95, "saving the patterns")
        if between is not None:
            between()
        with write_intent():
            summary = apply_mined(session, actor, job.model_id, mined)
            job.status, job.message = "done", ""
            job.created, job.updated, job.retired = summary.created, summary.updated, summary.retired
            job.progress, job.updated_at = 1.0, utcnow()
            job.finished_at = job.updated_at
            session.commit()
    except Exception as exc:  # a conflict is the refresh's answer; anything else goes back to the worker
        session.rollback()
        if not isinstance(exc, Conflict):
            raise  # unexpected (a lost connection): the worker retries it, then fails it after its attempts
        with write_intent():
            job = session.get(BacklogRefresh, job_id, populate_existing=True) or job
            job.status, job.message = "failed", exc.message
            job.updated_at = job.finished_at = utcnow()
            session.commit()


@contextmanager
def write_intent() -> Iterator[None]:
    """On SQLite, the transactions begun inside take the write lock up front (see feedback.db)."""
    token = sqlite_write_intent.set(True)
    try:
        yield
    finally:
        sqlite_write_intent.reset(token)


def _for(description: str) -> str:
    return description if description.startswith(("at ", "when ", "where ")) else f"for {description}"


def _override_pairs(session: Session, version_id: int, dims: Sequence[Dimension]) -> pd.DataFrame:
    """(condition values, final action, reason) counts over the version's overrides (one GROUP BY)."""
    exprs = [d.group_expr().label(f"c{i}") for i, d in enumerate(dims)]
    rows = session.execute(
        select(*exprs, Decision.final_action, Decision.reason_code, func.count().label("n"))
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .where(Decision.model_version_id == version_id, Decision.ai_shown.is_(True), Decision.action == "override")
        .group_by(*[e.element for e in exprs], Decision.final_action, Decision.reason_code)
    ).mappings()
    return _named(pd.DataFrame(rows.all()), dims)


def _named(frame: pd.DataFrame, dims: Sequence[Dimension]) -> pd.DataFrame:
    """Columns c0, c1, ... renamed to their dimensions, values as text (None when absent)."""
    if frame.empty:
        return frame
    frame = frame.rename(columns={f"c{i}": d.name for i, d in enumerate(dims)})
    for d in dims:
        frame[d.name] = frame[d.name].map(lambda v: None if v is None else str(v))
    return frame


def _top_pair(overrides: pd.DataFrame, conditions: tuple[tuple[str, str], ...]) -> tuple[str | None, str | None]:
    """The most common (final action, reason code) among a subgroup's overrides."""
    if overrides.empty:
        return None, None
    mask = np.ones(len(overrides), dtype=bool)
    for column, value in conditions:
        mask &= (overrides[column] == value).to_numpy()
    counts = overrides[mask].groupby(["final_action", "reason_code"], dropna=False)["n"].sum()
    if counts.empty:
        return None, None
    final, reason = counts.sort_values(ascending=False, kind="stable").index[0]
    return (None if pd.isna(final) else str(final)), (None if pd.isna(reason) else str(reason))


def item_payload(item: BacklogItem) -> dict[str, Any]:
    """The JSON shape of an item (API and webhooks)."""
    return {
        "id": item.id,
        "model": item.model.key if item.model else None,
        "model_version": item.model_version.version if item.model_version else None,
        "pattern": item.pattern_key,
        "conditions": item.conditions,
        "title": item.title,
        "cases": item.cases,
        "overrides": item.overrides,
        "rate": item.rate,
        "rate_low": item.rate_low,
        "rate_high": item.rate_high,
        "baseline": item.baseline,
        "ratio": item.rate / item.baseline if item.baseline else None,
        "excess_overrides": item.excess,
        "q_value": item.q_value,
        "ai_wrong_share": item.wrong_share,
        "priority": item.priority,
        "top_final_action": item.top_final_action,
        "top_reason": item.top_reason,
        "active": item.active,
        "status": item.status,
        "owner": item.owner.email if item.owner else None,
        "notes": item.notes,
        "verified_by_version": item.verified_by_version.version if item.verified_by_version else None,
        "row_version": item.row_version,
        "refreshed_at": item.refreshed_at.isoformat(),
    }


@dataclass(frozen=True)
class BacklogFilter:
    """Which backlog items a list shows."""

    model_key: str
    status: str | None = None
    version: str | None = None
    owner_id: int | None = None
    include_inactive: bool = False


def ranked(session: Session, flt: BacklogFilter) -> list[BacklogItem]:
    """The model's items, highest priority first (items no longer credible last, when asked for)."""
    query = (
        select(BacklogItem)
        .join(Model, Model.id == BacklogItem.model_id)
        .join(ModelVersion, ModelVersion.id == BacklogItem.model_version_id)
        .where(Model.key == flt.model_key)
        .options(
            joinedload(BacklogItem.model),
            joinedload(BacklogItem.model_version),
            joinedload(BacklogItem.owner),
            joinedload(BacklogItem.verified_by_version),
        )
        .order_by(BacklogItem.active.desc(), BacklogItem.priority.desc(), BacklogItem.id)
    )
    if flt.status:
        query = query.where(BacklogItem.status == flt.status)
    if flt.version:
        query = query.where(ModelVersion.version == flt.version)
    if flt.owner_id:
        query = query.where(BacklogItem.owner_id == flt.owner_id)
    if not flt.include_inactive:
        query = query.where(BacklogItem.active.is_(True))
    return list(session.scalars(query))


def get_item(session: Session, item_id: int) -> BacklogItem:
    """A backlog item, or NotFound."""
    item = session.get(
        BacklogItem,
        item_id,
        options=[joinedload(BacklogItem.model), joinedload(BacklogItem.model_version), joinedload(BacklogItem.owner)],
        populate_existing=True,
    )
    if item is None:
        raise NotFound(f"no backlog item {item_id}")
    return item


@dataclass(frozen=True)
class Verification:
    """A newer version's override rate on the same subgroup, against the item's."""

    version: ModelVersion
    cases: int
    overrides: int
    rate: float
    p_value: float
    lower: bool


def verification(session: Session, item: BacklogItem, alpha: float = 0.05) -> Verification | None:
    """Test the newest later version with cases in the subgroup: is its override rate significantly lower?"""
    newer = session.scalars(
        select(ModelVersion)
        .where(ModelVersion.model_id == item.model_id, ModelVersion.created_at > item.model_version.created_at)
        .order_by(ModelVersion.created_at.desc())
    ).all()
    for version in newer:
        n, k = _subgroup_counts(session, version.id, item.conditions)
        if n < 10:
            continue
        comparison = compare_rates(version.version, k, n, item.model_version.version, item.overrides, item.cases)
        # One-sided: lower than the item's version.
        one_sided = comparison.p_value / 2 if comparison.difference < 0 else 1 - comparison.p_value / 2
        return Verification(version, n, k, k / n, one_sided, comparison.difference < 0 and one_sided < alpha)
    return None


def _subgroup_counts(session: Session, version_id: int, conditions: Sequence[dict[str, Any]]) -> tuple[int, int]:
    row = session.execute(
        select(func.count(), func.sum(case((Decision.action == "override", 1), else_=0)))
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .where(
            Decision.model_version_id == version_id,
            Decision.ai_shown.is_(True),
            Decision.action.in_(("accept", "override")),
            pattern_clause(conditions),
        )
    ).one()
    return int(row[0] or 0), int(row[1] or 0)


def update_item(
    session: Session,
    user: User,
    item_id: int,
    *,
    status: str | None = None,
    owner_email: str | None = None,
    notes: str | None = None,
    row_version: int | None = None,
) -> BacklogItem:
    """Change an item's status, owner or notes; `verified` needs a newer version to prove it."""
    permissions.require(user, Action.CHANGE_MODEL)  # before saying whether the item exists
    item = get_item(session, item_id)
    permissions.require(user, Action.CHANGE_MODEL, session=session, model_id=item.model_id)
    if row_version is not None and row_version != item.row_version:
        raise Conflict("someone else changed this item; reload it and try again")
    problems = Problems()  # what the request gets wrong is a 422; what the stored data allows, a 409
    before = {"status": item.status, "owner": item.owner.email if item.owner else None}
    evidence: dict[str, Any] = {}
    if status is not None and status != item.status:
        evidence = _set_status(session, item, status, problems)
    if owner_email is not None:
        _set_owner(session, item, owner_email, problems)
    if notes is not None:
        if len(notes) > 10_000:
            problems.invalid["notes"] = "must be at most 10,000 characters"
        item.notes = notes
    if problems:
        session.rollback()
        problems.raise_any("the change is not allowed")
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise Conflict("someone else changed this item at the same time; reload it") from None
    changes = [
        Change("backlog.item_updated", "backlog_item", item.id, {"before": before, "status": item.status, **evidence})
    ]
    audit.record(session, Actor(user.id, user.email), changes)
    if before["status"] != item.status:
        session.refresh(item)
        webhooks.enqueue(session, "backlog.status_changed", {**item_payload(item), "previous_status": before["status"]})
    session.commit()
    webhooks.deliver_soon()
    return get_item(session, item.id)


def _set_status(session: Session, item: BacklogItem, status: str, problems: Problems) -> dict[str, Any]:
    """Move the item to `status`; `verified` only with a newer version significantly better here (its evidence)."""
    evidence: dict[str, Any] = {}
    if status not in BACKLOG_STATUSES:
        problems.invalid["status"] = "must be one of " + ", ".join(BACKLOG_STATUSES)
    elif status == "verified":
        check = verification(session, item)
        if check is None:
            problems.disallowed["status"] = "no newer version has decided cases in this pattern yet"
        elif not check.lower:
            problems.disallowed["status"] = (
                f"{check.version.version} is overridden {check.rate:.1%} here ({check.overrides}/{check.cases}) "
                f"against {item.rate:.1%}: not significantly lower (one-sided p = {check.p_value:.3g})"
            )
        else:
            item.verified_by_version_id = check.version.id
            evidence = {"version": check.version.version, "rate": check.rate, "p_value": check.p_value}
    if status != "verified":
        item.verified_by_version_id = None
    item.status = status
    return evidence


def _set_owner(session: Session, item: BacklogItem, owner_email: str, problems: Problems) -> None:
    """Give the item to someone who may change its model ("" takes it from its owner)."""
    if owner_email == "":
        item.owner_id = None
        return
    owner = session.scalars(select(User).where(User.email == owner_email.strip().lower())).first()
    if owner is None:  # 409 like any other non-owner: a 404 would say the item is gone
        problems.disallowed["owner"] = f"no user {owner_email}"
    elif not owner.active or not permissions.can_change_model(session, owner, item.model_id):
        problems.disallowed["owner"] = "must be one of this model's owners or an admin"
    else:
        item.owner_id = owner.id


def pattern_cases(
    session: Session,
    item: BacklogItem,
    *,
    overrides_only: bool = True,
    after: int | None = None,
    limit: int = paging.PAGE_SIZE,
) -> paging.Page:
    """The decided cases of the item's version in its pattern (its overrides unless told), a page at a time."""
    query = (
        select(
            Recommendation.id,
            Recommendation.external_id,
            Recommendation.subject,
            Recommendation.site,
            Recommendation.recommended_action,
            Recommendation.confidence,
            Decision.action,
            Decision.final_action,
            Decision.reason_code,
            Decision.note,
            Decision.decided_at,
        )
        .join(Decision, Decision.recommendation_id == Recommendation.id)
        .where(Decision.model_version_id == item.model_version_id, pattern_clause(item.conditions))
    )
    if overrides_only:
        query = query.where(Decision.action == "override")
    return paging.newest_first(session, query, after=after, limit=limit)


def rate_over_time(session: Session, item: BacklogItem) -> pd.DataFrame:
    """The subgroup's weekly override rate per version of the model (for the item's chart)."""
    week = queries.week_start(session, Decision.decided_at)
    rows = session.execute(
        select(
            ModelVersion.version,
            week.label("week"),
            func.count().label("n"),
            func.sum(case((Decision.action == "override", 1), else_=0)).label("overrides"),
        )
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .where(
            Decision.model_id == item.model_id,
            Decision.ai_shown.is_(True),
            Decision.action.in_(("accept", "override")),
            pattern_clause(item.conditions),
        )
        .group_by(ModelVersion.version, week)
        .order_by(week)
    ).all()
    frame = pd.DataFrame(rows, columns=["version", "week", "n", "overrides"])
    frame["rate"] = frame["overrides"] / frame["n"]
    return frame


def refreshed_at(session: Session, model_id: int) -> datetime | None:
    """When the model's backlog was last mined (None if never)."""
    return session.scalar(select(func.max(BacklogItem.refreshed_at)).where(BacklogItem.model_id == model_id))
