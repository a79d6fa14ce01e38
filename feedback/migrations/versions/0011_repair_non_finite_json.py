"""repair stored JSON holding NaN, infinities or numbers no reader can hold; report oversized values

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-29 09:00:00

Before the API checked JSON bodies, a `NaN` inside `features` was stored as it came. SQLite
kept text that is not JSON, and every export of the model failed on it; PostgreSQL's JSONB
refuses NaN but keeps numbers such as 1e400, which read back as infinity. Range conditions of
the retraining backlog were stored with `Infinity` as their open end.

This revision rewrites each such value with the non-finite numbers (and integers past 64 bits)
as null, and a value that does not parse at all as the column's empty value. It logs what it
changed, and logs (without changing) recommendations whose features or segment are past the
limits the API now enforces (docs/api.md); exports and breakdowns bound their columns for
those. The recommendations' payload hashes and the audit trail keep describing what was sent.
Downgrading changes nothing back: the old values were unreadable.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

log = logging.getLogger("alembic.runtime.migration")
LARGEST = 2**63 - 1
UNREADABLE = object()
# (table, column, what replaces a value that does not parse; UNREADABLE: leave it and report it)
COLUMNS: list[tuple[str, str, Any]] = [
    ("recommendations", "segment", {}),
    ("recommendations", "explanation", {"summary": "", "factors": []}),
    ("recommendations", "features", None),
    ("model_versions", "rules", {}),
    ("panel_rows", "covariates", {}),
    ("analysis_runs", "params", {}),
    ("analysis_runs", "result", None),
    ("backlog_items", "conditions", UNREADABLE),
    ("export_jobs", "params", UNREADABLE),
]
# Only rows whose text could hold such a number are read: a non-JSON token, an exponent of three
# digits, or a run of 19 digits (JSONB writes 1e400 out in full).
SUSPECT = {
    "sqlite": "NOT json_valid({c}) OR {c} GLOB '*[0-9][eE]*[0-9][0-9][0-9]*' OR {c} GLOB '*{digits}*'".replace(
        "{digits}", "[0-9]" * 19
    ),
    "postgresql": "{c}::text ~ '[0-9]{{19,}}|[eE][+]?[0-9]{{3,}}'",
}
# Values past the limits: more than 256 feature keys, more than 64 KiB of features, more than 32 segment keys.
OVERSIZED = {
    "sqlite": "CASE WHEN json_valid(COALESCE(features, '{}')) AND json_valid(segment) THEN "
    "(SELECT count(*) FROM json_each(features)) > 256 OR length(features) > 65536 "
    "OR (SELECT count(*) FROM json_each(segment)) > 32 END",
    "postgresql": "CASE WHEN jsonb_typeof(features) = 'object' THEN "
    "(SELECT count(*) FROM jsonb_object_keys(features)) > 256 OR octet_length(features::text) > 65536 END "
    "OR CASE WHEN jsonb_typeof(segment) = 'object' THEN (SELECT count(*) FROM jsonb_object_keys(segment)) > 32 END",
}


def finite(value: Any) -> tuple[Any, bool]:
    """The value with non-finite numbers and integers past 64 bits as null, and whether anything changed."""
    if isinstance(value, float):
        return (value, False) if math.isfinite(value) else (None, True)
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, False) if -LARGEST <= value <= LARGEST else (None, True)
    if isinstance(value, dict):
        pairs = {key: finite(item) for key, item in value.items()}
        return {key: item for key, (item, _) in pairs.items()}, any(changed for _, changed in pairs.values())
    if isinstance(value, list):
        items = [finite(item) for item in value]
        return [item for item, _ in items], any(changed for _, changed in items)
    return value, False


def upgrade() -> None:
    """Apply this revision."""
    conn = op.get_bind()
    dialect = conn.dialect.name
    if dialect not in SUSPECT:
        return
    for table, column, empty in COLUMNS:
        where = SUSPECT[dialect].format(c=column)
        rows = conn.execute(sa.text(f"SELECT id, CAST({column} AS TEXT) FROM {table} WHERE {where}")).all()
        repaired, unreadable = [], []
        for row_id, stored in rows:
            try:
                value, changed = finite(json.loads(stored))  # the standard parser reads NaN and Infinity
            except (ValueError, RecursionError):
                if empty is UNREADABLE:
                    unreadable.append(row_id)
                    continue
                value, changed = empty, True
                unreadable.append(row_id)
            if not changed:
                continue
            new = None if value is None else json.dumps(value, allow_nan=False)
            cast = "CAST(:v AS JSONB)" if dialect == "postgresql" else ":v"
            conn.execute(sa.text(f"UPDATE {table} SET {column} = {cast} WHERE id = :id"), {"v": new, "id": row_id})
            repaired.append(row_id)
        if repaired:
            log.warning("%s.%s: replaced NaN, infinity or out-of-range numbers in rows %s", table, column, repaired)
        if unreadable:
            log.warning("%s.%s: rows %s did not parse as JSON", table, column, unreadable)
    oversized = conn.execute(sa.text(f"SELECT id FROM recommendations WHERE {OVERSIZED[dialect]}")).scalars().all()
    if oversized:
        log.warning(
            "recommendations %s exceed the features or segment limits; exports and breakdowns use their "
            "most common keys only",
            list(oversized),
        )


def downgrade() -> None:
    """Nothing to undo: the repaired values were unreadable before."""
