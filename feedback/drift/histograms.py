"""Keep `drift_counts` in step with ingest: one upsert statement per batch of recommendations.

Like the override rollup (feedback/rollup.py), drift is read from counts kept as rows arrive,
never by loading every recommendation. A batch adds to the cells (version, day, feature, kind,
key) of its rows, all in one shard picked by its first id: concurrent batches of one version
mostly lock different rows, and readers sum the shards.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from analytics.drift import numeric_bin
from feedback.db import Base, readable_json, utcnow
from feedback.models import DriftCount, Recommendation

SHARDS = 8
MAX_FEATURES = 50  # input features tracked per recommendation (the first, by name), bounding the table
FEATURE_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,100}$")
MAX_CATEGORY = 200  # characters of a text value kept as its category
CONFIDENCE, ACTION = "confidence", "recommended_action"
Cell = tuple[int, str, str, str, str]  # version id, day, feature, kind, key


def values_of(row: Mapping[str, Any]) -> list[tuple[str, str, str, float]]:
    """(feature, kind, key, value) of every tracked value of one recommendation; value is 0 for categories."""
    found: list[tuple[str, str, str, float]] = []
    if row.get("confidence") is not None:
        found.append((CONFIDENCE, "numeric", str(numeric_bin(row["confidence"])), float(row["confidence"])))
    if row.get("recommended_action") is not None:
        found.append((ACTION, "categorical", str(row["recommended_action"])[:MAX_CATEGORY], 0.0))
    features = row.get("features")
    if not isinstance(features, dict):
        return found
    names = sorted(name for name in features if isinstance(name, str) and FEATURE_NAME.match(name))
    for name in names[:MAX_FEATURES]:
        value = features[name]
        if isinstance(value, bool):  # before int: a bool is an int in Python
            found.append((f"features.{name}", "categorical", "true" if value else "false", 0.0))
        elif isinstance(value, int | float) and math.isfinite(value):
            found.append((f"features.{name}", "numeric", str(numeric_bin(float(value))), float(value)))
        elif isinstance(value, str):
            found.append((f"features.{name}", "categorical", value[:MAX_CATEGORY], 0.0))
        # Missing values, lists and objects are not compared.
    return found


def day_of(moment: datetime | None) -> str:
    """The UTC day a recommendation counts on."""
    return (moment or utcnow()).astimezone(UTC).strftime("%Y-%m-%d")


def tally(rows: Iterable[Mapping[str, Any]]) -> dict[Cell, list[float]]:
    """Count and sum the recommendations' values per cell: cell -> [count, total]."""
    cells: dict[Cell, list[float]] = {}
    for row in rows:
        day = day_of(row.get("created_at"))
        for feature, kind, key, value in values_of(row):
            cell = cells.setdefault((row["model_version_id"], day, feature, kind, key), [0, 0.0])
            cell[0] += 1
            cell[1] += value
    return cells


def apply(session: Session, cells: dict[Cell, list[float]], shard: int = 0) -> None:
    """Add the counts in the caller's transaction: one INSERT .. ON CONFLICT statement for the whole batch."""
    if not cells:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = Base.metadata.tables["drift_counts"]
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["model_version_id", "day", "feature", "kind", "key", "shard"],
        set_={"count": table.c.count + statement.excluded.count, "total": table.c.total + statement.excluded.total},
    )
    # Sorted so concurrent transactions take row locks in the same order (no deadlocks).
    rows = [
        {
            "model_version_id": version_id,
            "day": day,
            "feature": feature,
            "kind": kind,
            "key": key,
            "shard": shard,
            "count": int(count),
            "total": total,
        }
        for (version_id, day, feature, kind, key), (count, total) in sorted(cells.items())
    ]
    session.execute(statement, rows)


def record(session: Session, rows: list[dict[str, Any]], ids: list[int]) -> None:
    """Count newly stored recommendation rows (called by the ingest path before its commit)."""
    if ids:
        apply(session, tally(rows), shard=ids[0] % SHARDS)


def rebuild(session: Session, chunk: int = 20000) -> None:
    """Recount every recommendation (after the migration that adds the table, or a hand edit)."""
    session.execute(delete(DriftCount))
    last = 0
    while True:
        batch = session.execute(
            select(
                Recommendation.id,
                Recommendation.model_version_id,
                Recommendation.created_at,
                Recommendation.confidence,
                Recommendation.recommended_action,
                readable_json(Recommendation.features).label("features"),
            )
            .where(Recommendation.id > last)
            .order_by(Recommendation.id)
            .limit(chunk)
        ).all()
        if not batch:
            break
        apply(session, tally(dict(r._mapping) for r in batch))
        last = batch[-1].id
