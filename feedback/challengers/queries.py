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
from sqlalchemy.orm import Session, aliased

from feedback.db import valid_json
from feedback.models import ChallengerRecommendation, Decision, ModelVersion, Outcome, Recommendation

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
    first = (
        select(Outcome.recommendation_id, func.min(Outcome.id).label("outcome_id"))
        .where(Outcome.label.is_not(None))
        .group_by(Outcome.recommendation_id)
        .subquery()
    )
    truth = aliased(Outcome)
    c, r, d = ChallengerRecommendation, Recommendation, Decision
    groups: list[Any] = [
        ModelVersion.version.label("version"),
        _flag(d.ai_shown.is_(True)).label("aided"),
        _flag(d.final_action.is_not(None)).label("has_final"),
        _flag(c.recommended_action == d.final_action).label("c_agree"),
        _flag(r.recommended_action == d.final_action).label("k_agree"),
        _flag(truth.label.is_not(None)).label("has_truth"),
        _flag(c.recommended_action == truth.label).label("c_right"),
        _flag(r.recommended_action == truth.label).label("k_right"),
    ]
    if attribute is not None:
        groups.append(valid_json(r.segment)[attribute].as_string().label("segment"))
    query = (
        select(*groups, func.count().label("n"))
        .select_from(c)
        .join(ModelVersion, ModelVersion.id == c.model_version_id)
        .join(r, r.id == c.recommendation_id)
        .join(d, d.recommendation_id == c.recommendation_id)
        .outerjoin(first, first.c.recommendation_id == c.recommendation_id)
        .outerjoin(truth, truth.id == first.c.outcome_id)
        .where(c.model_id == model_id, r.recommended_action.is_not(None))
        .group_by(*groups)
    )
    if version_id is not None:
        query = query.where(c.model_version_id == version_id)
    if decided[0] is not None:
        query = query.where(d.decided_at >= decided[0])
    if decided[1] is not None:
        query = query.where(d.decided_at < decided[1])
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
