"""Keep `decision_counts` in step with decisions: one upsert per (version, day, dimension, key)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedback.db import Base
from feedback.models import Decision, DecisionCount, Recommendation

ACTION_COLUMN = {"accept": "accepts", "override": "overrides", "escalate": "escalations"}


def decile(confidence: float | None) -> str | None:
    """0..9 for a confidence in [0, 1]."""
    return None if confidence is None else str(min(int(confidence * 10), 9))


def keys_of(decision: Mapping[str, Any], case: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (dimension, key) pairs one decision counts under."""
    pairs = [
        ("model_version", str(case["model_version"])),
        ("site", str(case["site"])),
        ("reviewer", str(decision["reviewer_id"])),
    ]
    if decision.get("reason_code"):
        pairs.append(("reason_code", str(decision["reason_code"])))
    if case.get("recommended_action"):
        pairs.append(("action_pair", f"{case['recommended_action']}→{decision.get('final_action') or '(escalated)'}"))
    if (d := decile(case.get("confidence"))) is not None:
        pairs.append(("confidence_decile", d))
    for attr, value in (case.get("segment") or {}).items():
        if value is not None:
            pairs.append((f"segment.{attr}", str(value)[:200]))
    return pairs


def tally(items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]]) -> Counter[tuple[int, int, str, str, str, str]]:
    """Count decisions: (model_id, version_id, day, dimension, key, column) -> n. Unaided decisions are skipped."""
    counts: Counter[tuple[int, int, str, str, str, str]] = Counter()
    for decision, case in items:
        if not decision["ai_shown"]:
            continue
        day = decision["decided_at"].astimezone(UTC).strftime("%Y-%m-%d")
        column = ACTION_COLUMN[decision["action"]]
        for dimension, key in keys_of(decision, case):
            counts[(case["model_id"], case["model_version_id"], day, dimension, key, column)] += 1
    return counts


def apply(session: Session, counts: Counter[tuple[int, int, str, str, str, str]]) -> None:
    """Add the counts to `decision_counts` in the caller's transaction (atomic increments, safe under concurrency)."""
    if not counts:
        return
    rows: dict[tuple[int, int, str, str, str], dict[str, Any]] = {}
    for (model_id, version_id, day, dimension, key, column), n in counts.items():
        row = rows.setdefault(
            (model_id, version_id, day, dimension, key),
            {
                "model_id": model_id,
                "model_version_id": version_id,
                "day": day,
                "dimension": dimension,
                "key": key,
                "accepts": 0,
                "overrides": 0,
                "escalations": 0,
            },
        )
        row[column] += n
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert if dialect == "sqlite" else None
    if insert is None:  # pragma: no cover - only SQLite and PostgreSQL are supported
        raise RuntimeError(f"no upsert for {dialect}")
    table = Base.metadata.tables["decision_counts"]
    statement = insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["model_version_id", "day", "dimension", "key"],
        set_={c: table.c[c] + statement.excluded[c] for c in ("accepts", "overrides", "escalations")},
    )
    # Sorted so concurrent transactions take row locks in the same order (no deadlocks).
    ordered = [rows[k] for k in sorted(rows)]
    for start in range(0, len(ordered), 5000):
        session.execute(statement, ordered[start : start + 5000])


def record(session: Session, decision: Decision, rec: Recommendation) -> None:
    """Count one new decision."""
    apply(session, tally([(_decision_dict(decision), _case_dict(rec))]))


def _decision_dict(decision: Decision) -> dict[str, Any]:
    """The fields of a decision the counts need."""
    return {
        "reviewer_id": decision.reviewer_id,
        "reason_code": decision.reason_code,
        "action": decision.action,
        "final_action": decision.final_action,
        "ai_shown": decision.ai_shown,
        "decided_at": decision.decided_at,
    }


def _case_dict(rec: Recommendation) -> dict[str, Any]:
    """The fields of a case the counts need."""
    return {
        "model_id": rec.model_id,
        "model_version_id": rec.model_version_id,
        "model_version": rec.model_version.version,
        "site": rec.site,
        "confidence": rec.confidence,
        "segment": rec.segment,
        "recommended_action": rec.recommended_action,
    }


def rebuild(session: Session, chunk: int = 20000) -> None:
    """Recount everything from the decisions (for the migration that introduces the table)."""
    from feedback.models import ModelVersion

    session.execute(delete(DecisionCount))
    labels = dict(session.execute(select(ModelVersion.id, ModelVersion.version)).all())
    last = 0
    while True:
        batch = session.execute(
            select(
                Decision.id,
                Decision.reviewer_id,
                Decision.reason_code,
                Decision.final_action,
                Decision.action,
                Decision.ai_shown,
                Decision.decided_at,
                Recommendation.model_id,
                Recommendation.model_version_id,
                Recommendation.site,
                Recommendation.confidence,
                Recommendation.recommended_action,
                Recommendation.segment,
            )
            .join(Recommendation, Recommendation.id == Decision.recommendation_id)
            .where(Decision.id > last)
            .order_by(Decision.id)
            .limit(chunk)
        ).all()
        if not batch:
            break
        pairs = [(dict(r._mapping), {**r._mapping, "model_version": labels[r.model_version_id]}) for r in batch]
        apply(session, tally(pairs))
        last = batch[-1].id
