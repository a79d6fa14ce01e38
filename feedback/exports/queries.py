"""What an export selects: its spec from the request, its SQL, its columns and its size."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, text
from sqlalchemy.orm import Session

from feedback import permissions
from feedback.backlog import conditions
from feedback.db import readable_json
from feedback.errors import NotFound, PermissionDenied
from feedback.json_input import MAX_KEYS, SEGMENT_MAX_KEYS
from feedback.models import (
    EXPORT_FORMATS,
    BacklogItem,
    Decision,
    ExportJob,
    Model,
    ModelVersion,
    Recommendation,
    User,
)
from feedback.outcomes import queries as outcome_queries
from feedback.params import Choice, Flag, Id, ModelKey, Version, When, parse_params
from feedback.permissions import Action

# Column kinds: int, str, float, bool, time (pyarrow is imported only when a Parquet file is written).
BASE_COLUMNS: list[tuple[str, str]] = [
    ("case_id", "int"),
    ("external_id", "str"),
    ("model", "str"),
    ("model_version", "str"),
    ("site", "str"),
    ("recommended_action", "str"),
    ("confidence", "float"),
    ("label", "str"),
    ("action", "str"),
    ("reason_code", "str"),
    ("ai_shown", "bool"),
    ("quick", "bool"),  # decided on the review screen too soon after opening to have read it
    ("reviewer_role", "str"),
    ("outcome_label", "str"),
    ("created_at", "time"),
    ("opened_at", "time"),
    ("decided_at", "time"),
]


@dataclass(frozen=True)
class ExportSpec:
    """What to export."""

    model_key: str
    format: str = "csv"
    version: str | None = None
    decided_from: datetime | None = None
    decided_to: datetime | None = None
    backlog_item_id: int | None = None
    overrides_only: bool = False
    include_reviewer: bool = False

    def as_params(self) -> dict[str, Any]:
        """The spec as the query parameters that ask for it."""
        return {
            "model": self.model_key,
            "version": self.version,
            "from": self.decided_from.isoformat() if self.decided_from else None,
            "to": self.decided_to.isoformat() if self.decided_to else None,
            "backlog_item": self.backlog_item_id,
            "overrides_only": self.overrides_only,
            "include_reviewer": self.include_reviewer,
        }


EXPORT_PARAMS = (
    ModelKey(),
    Choice("format", EXPORT_FORMATS, default="csv"),
    Version(),
    When("from", description="decided at or after"),
    When("to", description="decided before"),
    Id("backlog_item", description="only the cases of this backlog item"),
    Flag("overrides_only"),
    Flag("include_reviewer", description="reviewers' e-mail addresses (admins only)"),
)


def parse_spec(user: User, args: Mapping[str, Any]) -> ExportSpec:
    """Check an export request (query string or form); 422 naming each bad field."""
    permissions.require(user, Action.EXPORT)
    values = parse_params(args, EXPORT_PARAMS)
    start, end = values["from"], values["to"]  # `to` before `from`: an empty export, as for the analytics
    if values["include_reviewer"] and user.role != "admin":
        raise PermissionDenied("only an admin may export reviewers' identities")
    return ExportSpec(
        model_key=values["model"],
        format=values["format"],
        version=values["version"],
        decided_from=start,
        decided_to=end,
        backlog_item_id=values["backlog_item"],
        overrides_only=values["overrides_only"],
        include_reviewer=values["include_reviewer"],
    )


def export_query(session: Session, spec: ExportSpec) -> tuple[Select[Any], Model]:
    """The SELECT of an export's rows, and its model (NotFound when the model or version is unknown)."""
    model = session.scalars(select(Model).where(Model.key == spec.model_key)).first()
    if model is None:
        raise NotFound(f"no model {spec.model_key}", {"model": "unknown model"})
    columns = [
        Recommendation.id.label("case_id"),
        Recommendation.external_id,
        ModelVersion.version.label("model_version"),
        Recommendation.site,
        Recommendation.recommended_action,
        Recommendation.confidence,
        Decision.final_action.label("label"),
        Decision.action,
        Decision.reason_code,
        Decision.ai_shown,
        Decision.quick,
        User.role.label("reviewer_role"),
        outcome_queries.first_label().label("outcome_label"),
        Recommendation.created_at,
        Decision.opened_at,
        Decision.decided_at,
        readable_json(Recommendation.segment).label("segment"),
        readable_json(Recommendation.features).label("features"),
    ]
    if spec.include_reviewer:
        columns.append(User.email.label("reviewer_email"))
    query = (
        select(*columns)
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .join(User, User.id == Decision.reviewer_id)
        .where(Decision.model_id == model.id, Decision.action.in_(("accept", "override")))
        .order_by(Decision.id)
    )
    if spec.version:
        query = query.where(ModelVersion.version == spec.version)
    if spec.decided_from:
        query = query.where(Decision.decided_at >= spec.decided_from)
    if spec.decided_to:
        query = query.where(Decision.decided_at < spec.decided_to)
    if spec.overrides_only:
        query = query.where(Decision.action == "override")
    if spec.backlog_item_id:
        item = session.get(BacklogItem, spec.backlog_item_id)
        if item is None or item.model_id != model.id:
            raise NotFound(f"no backlog item {spec.backlog_item_id} for {model.key}", {"backlog_item": "unknown item"})
        query = query.where(
            Decision.model_version_id == item.model_version_id, conditions.pattern_clause(item.conditions)
        )
    return query, model


def check(session: Session, spec: ExportSpec) -> None:
    """Raise NotFound for an unknown model or backlog item."""
    export_query(session, spec)


def json_columns(session: Session, model_id: int) -> dict[str, str]:
    """The model's most common segment and feature keys with one Arrow type each, found in SQL.

    At most `SEGMENT_MAX_KEYS` segment and `MAX_KEYS` feature columns, the keys held by the most
    cases: however many keys a few cases carry, the file's width stays bounded. Rows whose
    stored JSON is unreadable are skipped here and export blank cells.
    """
    if session.get_bind().dialect.name == "postgresql":
        sql = """
            SELECT 'segment', e.key, jsonb_typeof(e.value), count(*) FROM recommendations r, jsonb_each(r.segment) e
             WHERE r.model_id = :m GROUP BY 2, 3
            UNION ALL
            SELECT 'feature', e.key, jsonb_typeof(e.value), count(*) FROM recommendations r,
                   jsonb_each(CASE jsonb_typeof(r.features) WHEN 'object' THEN r.features ELSE '{}' END) e
             WHERE r.model_id = :m GROUP BY 2, 3"""  # features may be JSON null, on which jsonb_each fails
    else:
        sql = """
            SELECT 'segment', e.key, e.type, count(*) FROM recommendations r, json_each(r.segment) e
             WHERE r.model_id = :m AND json_valid(r.segment) GROUP BY 2, 3
            UNION ALL
            SELECT 'feature', e.key, e.type, count(*) FROM recommendations r, json_each(COALESCE(r.features, '{}')) e
             WHERE r.model_id = :m AND json_valid(COALESCE(r.features, '{}')) GROUP BY 2, 3"""
    kinds: dict[str, set[str]] = {}
    cases: Counter[tuple[str, str]] = Counter()
    for source, key, kind, n in session.execute(text(sql), {"m": model_id}):
        cases[source, key] += n
        if kind != "null":
            kinds.setdefault(f"{source}.{key}", set()).add(
                {"integer": "number", "real": "number", "true": "boolean", "false": "boolean"}.get(kind, kind)
            )
    kept: set[str] = set()
    for source, most in (("segment", SEGMENT_MAX_KEYS), ("feature", MAX_KEYS)):
        common = sorted((pair for pair in cases.items() if pair[0][0] == source), key=lambda p: (-p[1], p[0][1]))
        kept.update(f"{source}.{key}" for (_, key), _ in common[:most])
    kinds = {name: found for name, found in kinds.items() if name in kept}
    out = {}
    for name in sorted(kinds):
        found = kinds[name]
        out[name] = "float" if found == {"number"} else "bool" if found == {"boolean"} else "str"
    return out


def count(session: Session, spec: ExportSpec) -> int:
    """How many decided cases the export will write."""
    query, _ = export_query(session, spec)
    return int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def columns_of(spec: ExportSpec, extra: dict[str, str]) -> list[tuple[str, str]]:
    """The export's columns as (name, type): the base ones, the reviewer's e-mail if asked for, then `extra`."""
    fields = list(BASE_COLUMNS)
    if spec.include_reviewer:
        fields.append(("reviewer_email", "str"))
    return fields + list(extra.items())


def recent_jobs(session: Session, viewer: User, *, limit: int = 20) -> list[ExportJob]:
    """The viewer's own most recent export jobs, newest first."""
    return list(
        session.scalars(
            select(ExportJob).where(ExportJob.created_by_id == viewer.id).order_by(ExportJob.id.desc()).limit(limit)
        )
    )
