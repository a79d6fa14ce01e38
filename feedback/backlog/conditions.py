"""Conditions of a backlog pattern: each knows its GROUP BY expression and its WHERE clause.

So an item's cases, its chart and its verification on a newer version all select exactly the
subgroup that was mined.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd
from sqlalchemy import ColumnElement, and_, case, func, select, true
from sqlalchemy.orm import Session

from feedback.db import json_float, readable_json, valid_json
from feedback.json_input import SEGMENT_MAX_KEYS, finite_or_none
from feedback.models import (
    Decision,
    Model,
    Recommendation,
)
from feedback.outcomes import queries as outcome_queries
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
    label = outcome_queries.first_label()
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
    return named_conditions(pd.DataFrame(session.execute(query).mappings().all()), dims)


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


def named_conditions(frame: pd.DataFrame, dims: Sequence[Dimension]) -> pd.DataFrame:
    """Columns c0, c1, ... renamed to their dimensions, values as text (None when absent)."""
    if frame.empty:
        return frame
    frame = frame.rename(columns={f"c{i}": d.name for i, d in enumerate(dims)})
    for d in dims:
        frame[d.name] = frame[d.name].map(lambda v: None if v is None else str(v))
    return frame
