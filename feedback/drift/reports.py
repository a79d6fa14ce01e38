"""Drift of one version: every feature, the confidence and the action mix, current window against reference.

The default reference is the version's first 14 days in pilot (from the audit trail), or, for a
version never in pilot, its first 14 days with recommendations; the default current window is
the last 14 days to today. Either can be given explicitly (inclusive UTC days).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from analytics import drift
from feedback.db import utcnow
from feedback.drift import queries
from feedback.drift.histograms import ACTION, CONFIDENCE
from feedback.errors import NotFound
from feedback.formatting import p_equals
from feedback.models import Model, ModelVersion

WINDOW_DAYS = 14
METHOD_WORDS = {
    "ks": "Kolmogorov–Smirnov test",
    "wasserstein": "Wasserstein distance ÷ reference std",
    "chisquare": "chi-square test",
    "jensenshannon": "Jensen–Shannon distance",
}
MAX_WINDOW_DAYS = 3660
Window = tuple[date, date]


@dataclass(frozen=True)
class DriftRow:
    """One feature's drift between the two windows (see analytics.drift for the methods and the rule)."""

    feature: str  # "features.NAME", "confidence" or "recommended_action"
    kind: str  # numeric | categorical
    method: str  # ks | wasserstein | chisquare | jensenshannon
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    n_reference: int
    n_current: int


def _checked(window: Window | None) -> Window | None:
    """A window as asked, at most MAX_WINDOW_DAYS long (its last days); one that ends before it starts is empty.

    Neither is an error: a rule between two parameters cannot be written in the API's schema (as
    for the override analytics' `from` and `to`), and the answer says which window it used.
    """
    if window is None:
        return None
    start, end = window
    return max(start, end - timedelta(days=MAX_WINDOW_DAYS)), end


def windows(
    session: Session, version_id: int, reference: Window | None = None, current: Window | None = None
) -> tuple[Window | None, Window]:
    """The reference and current windows used: given ones as they are, else the defaults (reference None: no data)."""
    reference, current = _checked(reference), _checked(current)
    if current is None:
        today = utcnow().date()
        current = (today - timedelta(days=WINDOW_DAYS - 1), today)
    if reference is None:
        start = queries.pilot_start(session, version_id) or queries.first_day(session, version_id)
        reference = (start, start + timedelta(days=WINDOW_DAYS - 1)) if start else None
    return reference, current


def _order(feature: str) -> tuple[int, str]:
    """Inputs by name, then the confidence, then the action mix."""
    return ({CONFIDENCE: 1, ACTION: 2}.get(feature, 0), feature)


def _features(ref: pd.DataFrame, cur: pd.DataFrame) -> list[tuple[str, str]]:
    """Each (feature, kind) in either window; a feature sent as both numbers and text is compared as its majority."""
    both = pd.concat([ref, cur])[["feature", "kind", "count"]].groupby(["feature", "kind"])["count"].sum()
    chosen: dict[str, tuple[str, int]] = {}
    for (feature, kind), n in both.items():
        if feature not in chosen or n > chosen[feature][1]:
            chosen[feature] = (str(kind), int(n))
    return sorted(((f, k) for f, (k, _) in chosen.items()), key=lambda fk: _order(fk[0]))


def _part(frame: pd.DataFrame, feature: str, kind: str) -> pd.DataFrame:
    """One feature's counts, with numeric keys as the bin numbers they are (so they sort by value)."""
    part = frame[(frame["feature"] == feature) & (frame["kind"] == kind)].copy()
    if kind == "numeric":
        part["key"] = part["key"].astype("int64")
    return part


def compare_windows(
    session: Session,
    version_id: int,
    reference: Window | None,
    current: Window,
    *,
    distance_threshold: float = drift.DISTANCE_THRESHOLD,
) -> list[DriftRow]:
    """Drift rows of the version between two resolved windows (no rows when the reference is None)."""
    if reference is None:
        return []
    ref = queries.histogram(session, version_id, reference)
    cur = queries.histogram(session, version_id, current)
    rows = []
    for feature, kind in _features(ref, cur):
        result = drift.compare(
            _part(ref, feature, kind), _part(cur, feature, kind), kind, distance_threshold=distance_threshold
        )
        rows.append(
            DriftRow(
                feature,
                kind,
                result.method,
                result.statistic,
                result.p_value,
                result.threshold,
                result.drifted,
                result.n_reference,
                result.n_current,
            )
        )
    return rows


def drift_rows(
    session: Session, *, version_id: int, reference: Window | None = None, current: Window | None = None
) -> list[DriftRow]:
    """Every feature's drift for a version (windows default as the module says); [] when there is no data."""
    if session.get(ModelVersion, version_id) is None:
        raise NotFound(f"no model version {version_id}", {"version": "unknown version"})
    ref, cur = windows(session, version_id, reference, current)
    return compare_windows(session, version_id, ref, cur)


def get_model(session: Session, key: str) -> Model:
    """The model with this key, or NotFound naming the field."""
    model = session.scalar(select(Model).where(Model.key == key))
    if model is None:
        raise NotFound(f"no model {key!r}", {"model": "unknown model"})
    return model


def version_of(session: Session, key: str, version: str) -> tuple[Model, ModelVersion]:
    """The model and its version named in a request, or NotFound naming the field."""
    model = get_model(session, key)
    found = session.scalar(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
    )
    if found is None:
        raise NotFound(f"{model.key} has no version {version!r}", {"version": "unknown version"})
    return model, found


def feature_label(model: Model, feature: str) -> str:
    """A feature in the model's own words: its segment label if it has one, else the name in words."""
    if feature == CONFIDENCE:
        return "Confidence"
    if feature == ACTION:
        return "Recommended action"
    return model.segment_label(feature.removeprefix("features."))


@dataclass(frozen=True)
class DriftPage:
    """Everything the drift page shows for one version."""

    model: Model
    version: ModelVersion
    reference: Window | None
    current: Window
    rows: list[DriftRow]
    labels: dict[str, str]
    chosen: DriftRow | None  # the feature whose daily drift is shown
    daily: pd.DataFrame | None  # one row per current day with data, for `chosen`
    basis: str  # what the reference is: "chosen", "pilot" (first 14 days in pilot) or "first_days" (of its data)


def _chosen(rows: list[DriftRow], asked: str | None) -> DriftRow | None:
    """The feature asked for, else the first that drifted, else the first."""
    return (
        next((r for r in rows if r.feature == asked), None)
        or next((r for r in rows if r.drifted), None)
        or (rows[0] if rows else None)
    )


def page(
    session: Session,
    key: str,
    version: str,
    reference: Window | None = None,
    current: Window | None = None,
    feature: str | None = None,
) -> DriftPage:
    """The drift rows, and one feature's daily drift against the reference (only that one: the page shows one)."""
    model, found = version_of(session, key, version)
    ref_window, cur_window = windows(session, found.id, reference, current)
    rows = compare_windows(session, found.id, ref_window, cur_window)
    chosen = _chosen(rows, feature)
    daily = None
    if ref_window is not None and chosen is not None:
        ref = queries.histogram(session, found.id, ref_window, feature=chosen.feature)
        cur = queries.histogram(session, found.id, cur_window, by_day=True, feature=chosen.feature)
        daily = drift.daily(
            _part(ref, chosen.feature, chosen.kind), _part(cur, chosen.feature, chosen.kind), chosen.kind
        )
    labels = {row.feature: feature_label(model, row.feature) for row in rows}
    basis = "chosen" if reference else "pilot" if queries.pilot_start(session, found.id) else "first_days"
    return DriftPage(model, found, ref_window, cur_window, rows, labels, chosen, daily, basis)


def worst(session: Session, version_id: int, days: int, threshold: float) -> tuple[DriftRow | None, bool]:
    """For the drift guardrail: the most drifted feature over the last `days` days, and whether any drifted.

    Distances are judged against the guardrail's threshold; tests (small windows) at 5%.
    """
    today = utcnow().date()
    ref, cur = windows(session, version_id, None, (today - timedelta(days=days - 1), today))
    rows = compare_windows(session, version_id, ref, cur, distance_threshold=threshold)
    if not rows:
        return None, False
    drifted = [r for r in rows if r.drifted]
    scored = drifted or [r for r in rows if r.statistic is not None]
    if not scored:
        return None, False
    # Among drifted rows the strongest evidence: the largest distance, or the smallest p.
    top = max(scored, key=lambda r: (r.method in ("wasserstein", "jensenshannon"), _strength(r)))
    return top, bool(drifted)


def evidence(row: DriftRow) -> str:
    """The row's evidence in words: "Wasserstein distance ÷ reference std 0.23" or "chi-square test, p = 0.001"."""
    if row.method in ("wasserstein", "jensenshannon"):
        return f"{METHOD_WORDS[row.method]} {row.statistic or 0:.3g}"
    return f"{METHOD_WORDS[row.method]}, {p_equals(row.p_value)}"


def _strength(row: DriftRow) -> float:
    """How far a row is past (or towards) its limit, comparable within one method family."""
    if row.method in ("wasserstein", "jensenshannon"):
        return row.statistic or 0.0
    return 1.0 - (row.p_value if row.p_value is not None else 1.0)


def as_dicts(rows: list[DriftRow], labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Rows as dicts (the API and CSV), with labels when given."""
    out = []
    for r in rows:
        item: dict[str, Any] = dict(r.__dict__)
        if labels is not None:
            item["label"] = labels.get(r.feature, r.feature)
        out.append(item)
    return out


def _span(start: date | None, end: date | None) -> Window | None:
    """A window from its given ends: one end alone runs 14 days from or to it (to today at most)."""
    span = timedelta(days=WINDOW_DAYS - 1)
    if start is not None and end is not None:
        return start, end
    if end is not None:
        return end - span, end
    if start is not None:
        return start, max(start, min(start + span, utcnow().date()))
    return None


def requested(args: dict[str, Any]) -> tuple[Window | None, Window | None]:
    """The reference and current windows a query asks for (reference_from/_to, from/to; None: the default).

    A window given by one end runs 14 days from or to it, as the default windows do.
    """
    return _span(args.get("reference_from"), args.get("reference_to")), _span(args.get("from"), args.get("to"))


def default_version(session: Session, key: str) -> str:
    """The version a drift page shows first: the newest one reviewers see, else the newest."""
    model = get_model(session, key)
    versions = sorted(model.versions, key=lambda v: (v.stage in ("pilot", "production"), v.created_at, v.id))
    if not versions:
        raise NotFound(f"{model.key} has no versions", {"version": "the model has no versions"})
    return versions[-1].version
