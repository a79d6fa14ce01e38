"""Finding over-override patterns in a model's history, read-only.

Mining counts decisions per combination of condition values in one SQL GROUP BY, then hands
that aggregated frame to `analytics.patterns`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from analytics import patterns as mining
from feedback.backlog.conditions import Dimension, cell_counts, describe, dimensions, named_conditions
from feedback.errors import NotFound
from feedback.models import (
    Decision,
    Model,
    ModelVersion,
    Recommendation,
)


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
    return named_conditions(pd.DataFrame(rows.all()), dims)


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
