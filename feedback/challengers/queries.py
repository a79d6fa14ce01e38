"""Challenger counts in SQL: one row per combination of flags, grouped in the database.

Each challenger recommendation is paired with its case's decision (decided cases only) and the
case's first label outcome, the same truth the override rollups use. Cases whose champion sent
an error instead of an action are left out: there is no champion answer to compare with.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import ColumnElement, Integer, case, func, select
from sqlalchemy.orm import Session

from feedback.db import valid_json
from feedback.models import ChallengerRecommendation, Decision, ModelVersion, Recommendation
from feedback.outcomes import queries as outcome_queries

FLAG_COLUMNS = ("aided", "has_final", "c_agree", "k_agree", "has_truth", "c_right", "k_right")


def _flag(condition: ColumnElement[bool]) -> ColumnElement[int]:
    """1 where the condition holds, else 0 (also where it is NULL), the same on every backend."""
    return case((condition, 1), else_=0)


def cells(
    session: Session,
    model_id: int,
    version_id: int | None = None,
    attribute: str | None = None,
    decided: tuple[datetime | None, datetime | None] = (None, None),
) -> pd.DataFrame:
    """Counted cells of a model's challengers (one version's, if given), per challenger version and
    optionally per value of one segment attribute (column `segment`), with the flags of
    analytics.challengers.

    :param attribute: a segment attribute name (already checked), or None for no breakdown
    :param decided: the cases decided from the first instant (inclusive) to the second (exclusive); None is open
    """
    c, r, d = ChallengerRecommendation, Recommendation, Decision
    # One row per challenger recommendation with the case's truth (outcome_queries.first_label, the
    # label the override rollups judge against); the flags are grouped over it outside.
    pairs = (
        select(
            ModelVersion.version.label("version"),
            d.ai_shown.label("ai_shown"),
            d.final_action.label("final"),
            c.recommended_action.label("challenger"),
            r.recommended_action.label("champion"),
            outcome_queries.first_label().label("truth"),
            *([valid_json(r.segment)[attribute].as_string().label("segment")] if attribute is not None else []),
        )
        .select_from(c)
        .join(ModelVersion, ModelVersion.id == c.model_version_id)
        .join(r, r.id == c.recommendation_id)
        .join(d, d.recommendation_id == c.recommendation_id)
        .where(c.model_id == model_id, r.recommended_action.is_not(None))
    )
    if version_id is not None:
        pairs = pairs.where(c.model_version_id == version_id)
    if decided[0] is not None:
        pairs = pairs.where(d.decided_at >= decided[0])
    if decided[1] is not None:
        pairs = pairs.where(d.decided_at < decided[1])
    p = pairs.subquery()
    groups: list[Any] = [
        p.c.version,
        _flag(p.c.ai_shown.is_(True)).label("aided"),
        _flag(p.c.final.is_not(None)).label("has_final"),
        _flag(p.c.challenger == p.c.final).label("c_agree"),
        _flag(p.c.champion == p.c.final).label("k_agree"),
        _flag(p.c.truth.is_not(None)).label("has_truth"),
        _flag(p.c.challenger == p.c.truth).label("c_right"),
        _flag(p.c.champion == p.c.truth).label("k_right"),
        *([p.c.segment] if attribute is not None else []),
    ]
    query = select(*groups, func.count().label("n")).group_by(*groups)
    columns = ["version", *FLAG_COLUMNS, *(["segment"] if attribute else []), "n"]
    frame = pd.DataFrame([tuple(row) for row in session.execute(query)], columns=columns)
    return frame.astype({"n": "int64", **{flag: "int64" for flag in FLAG_COLUMNS}})


def challenger_versions(session: Session, model_id: int) -> list[tuple[str, int]]:
    """The versions that sent challengers for this model's cases, with how many cases each scored."""
    rows = session.execute(
        select(ModelVersion.version, func.count(ChallengerRecommendation.id).cast(Integer))
        .join(ChallengerRecommendation, ChallengerRecommendation.model_version_id == ModelVersion.id)
        .where(ModelVersion.model_id == model_id)
        .group_by(ModelVersion.id, ModelVersion.version)
        .order_by(ModelVersion.id)
    )
    return [(version, int(count)) for version, count in rows]
