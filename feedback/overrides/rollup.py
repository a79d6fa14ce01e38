"""Keep `decision_counts` in step with decisions and outcomes: one upsert per (version, day, dimension, key, shard).

A decision adds to its action's column under every dimension it belongs to (and an undo takes it
away again). A case's first
label outcome adds the accuracy columns (with_outcome, ai_right, ...) to its decision's cells,
whichever of the two arrives second.

Every decision of a version on one day adds to the same few cells (its version's row, the
"(accepted)" reason, the site), and each upsert holds its rows locked until the commit. So a
new decision counts in one of `SHARDS` copies of each shared cell, picked by its id: concurrent
decisions mostly lock different rows. Readers sum the shards; a recount writes shard 0 only.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC
from typing import Any

from sqlalchemy import bindparam, delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from feedback.db import Base, readable_json
from feedback.json_input import SEGMENT_KEY, SEGMENT_MAX_KEYS
from feedback.models import Decision, DecisionCount, ModelVersion, Outcome, Recommendation

ACTION_COLUMN = {"accept": "accepts", "override": "overrides", "escalate": "escalations"}
COLUMNS = (
    "accepts",
    "overrides",
    "escalations",
    "with_outcome",
    "ai_right",
    "final_right",
    "outcome_overrides",
    "corrected",
    "overrode_right",
)
SPEED_BUCKETS_PER_E = 20  # reviewer_speed / site_speed keys: "<reviewer id or site>:<round(ln seconds * 20)>"
SHARDS = 8
# A reviewer decides one case at a time, so their own cells are never contended: one copy each
# (sharding them made "who was right", which sums every reviewer's speed cells, 3x slower).
UNSHARDED = frozenset({"reviewer", "reviewer_speed"})
Cell = tuple[int, int, str, str, str, int, str]  # model, version, day, dimension, key, shard, column


def decile(confidence: float | None) -> str | None:
    """0..9 for a confidence in [0, 1]."""
    return None if confidence is None else str(min(int(confidence * 10), 9))


def speed_bucket(decision: Mapping[str, Any]) -> int:
    """Log-spaced bucket of the seconds from opening to deciding (about 5% wide)."""
    seconds = (decision["decided_at"] - decision["opened_at"]).total_seconds()
    return round(math.log(max(seconds, 1.0)) * SPEED_BUCKETS_PER_E)


def keys_of(decision: Mapping[str, Any], case: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The (dimension, key) pairs one decision counts under."""
    pairs = [
        ("model_version", str(case["model_version"])),
        ("site", str(case["site"])),
        ("reviewer", str(decision["reviewer_id"])),
        ("reason_code", str(decision.get("reason_code") or "(accepted)")),
        ("reviewer_speed", f"{decision['reviewer_id']}:{speed_bucket(decision)}"),
        ("site_speed", f"{case['site']}:{speed_bucket(decision)}"),
    ]
    if case.get("recommended_action"):
        pairs.append(("action_pair", f"{case['recommended_action']}→{decision.get('final_action') or '(escalated)'}"))
    if (d := decile(case.get("confidence"))) is not None:
        pairs.append(("confidence_decile", d))
    segment = case.get("segment")
    if isinstance(segment, dict):
        # Bounded like the breakdown menu: a case stored before ingest limited segments adds no more.
        for attr in sorted(a for a in segment if SEGMENT_KEY.match(a))[:SEGMENT_MAX_KEYS]:
            if (value := segment[attr]) is not None:
                pairs.append((f"segment.{attr}", str(value)[:200]))
    return pairs


def _accuracy(decision: Mapping[str, Any], case: Mapping[str, Any], truth: str) -> list[str]:
    """The accuracy columns a decision earns once its case's true label is known."""
    ai_right = case.get("recommended_action") == truth
    final_right = decision.get("final_action") == truth
    columns = ["with_outcome"] + ["ai_right"] * ai_right + ["final_right"] * final_right
    if decision["action"] == "override":
        columns += (
            ["outcome_overrides"] + ["corrected"] * (final_right and not ai_right) + ["overrode_right"] * ai_right
        )
    return columns


def tally(
    items: Iterable[tuple[Mapping[str, Any], Mapping[str, Any]]], *, decisions: bool = True, shards: int = 1
) -> Counter[Cell]:
    """Count decisions (and, where the case carries `truth`, their accuracy); unaided decisions are skipped.

    With decisions=False only the accuracy columns are counted (an outcome arriving later). With
    several shards, each decision counts in the shard its id picks.
    """
    counts: Counter[Cell] = Counter()
    for decision, case in items:
        if not decision["ai_shown"]:
            continue
        day = decision["decided_at"].astimezone(UTC).strftime("%Y-%m-%d")
        columns = [ACTION_COLUMN[decision["action"]]] if decisions else []
        if case.get("truth") is not None and decision["action"] != "escalate":
            columns += _accuracy(decision, case, case["truth"])
        shard = decision["id"] % shards if shards > 1 else 0
        for dimension, key in keys_of(decision, case):
            cell = (
                case["model_id"],
                case["model_version_id"],
                day,
                dimension,
                key,
                0 if dimension in UNSHARDED else shard,
            )
            for column in columns:
                counts[(*cell, column)] += 1
    return counts


def apply(session: Session, counts: Counter[Cell]) -> None:
    """Add the counts to `decision_counts` in the caller's transaction (atomic increments, safe under concurrency)."""
    if not counts:
        return
    rows: dict[tuple[int, int, str, str, str, int], dict[str, Any]] = {}
    for (model_id, version_id, day, dimension, key, shard, column), n in counts.items():
        row = rows.setdefault(
            (model_id, version_id, day, dimension, key, shard),
            {
                "model_id": model_id,
                "model_version_id": version_id,
                "day": day,
                "dimension": dimension,
                "key": key,
                "shard": shard,
                **dict.fromkeys(COLUMNS, 0),
            },
        )
        row[column] += n
    statement = _upsert(session.get_bind().dialect.name)
    # Sorted so concurrent transactions take row locks in the same order (no deadlocks).
    ordered = [rows[k] for k in sorted(rows)]
    for start in range(0, len(ordered), 5000):
        session.execute(statement, ordered[start : start + 5000])


@functools.cache
def _upsert(dialect: str) -> Any:
    """The counts' upsert for this dialect, built once (building it took longer than running it)."""
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    table = Base.metadata.tables["decision_counts"]
    statement = insert(table)
    return statement.on_conflict_do_update(
        index_elements=["model_version_id", "day", "dimension", "key", "shard"],
        set_={c: table.c[c] + statement.excluded[c] for c in COLUMNS},
    )


# One case's first label outcome: the decision path asks this for every decision.
FIRST_LABEL = (
    select(Outcome.id, Outcome.label)
    .where(Outcome.recommendation_id == bindparam("rec_id"), Outcome.label.is_not(None))
    .order_by(Outcome.id)
    .limit(1)
)


def _first_label(session: Session, recommendation_id: int) -> str | None:
    """The case's first label outcome's label, or None."""
    row = session.execute(FIRST_LABEL, {"rec_id": recommendation_id}).first()
    return None if row is None else row.label


def _first_labels(session: Session, recommendation_ids: Sequence[int]) -> dict[int, tuple[int, str]]:
    """Each case's first label outcome: recommendation id -> (outcome id, label)."""
    first = (
        select(Outcome.recommendation_id, func.min(Outcome.id).label("outcome_id"))
        .where(Outcome.label.is_not(None), Outcome.recommendation_id.in_(list(recommendation_ids)))
        .group_by(Outcome.recommendation_id)
        .subquery()
    )
    rows = session.execute(
        select(first.c.recommendation_id, first.c.outcome_id, Outcome.label).join(
            Outcome, Outcome.id == first.c.outcome_id
        )
    )
    return {rec_id: (outcome_id, label) for rec_id, outcome_id, label in rows}


def record(session: Session, decision: Decision, rec: Recommendation) -> bool:
    """Count one new decision (with its accuracy if the outcome came first); say whether it came first."""
    case = _case_dict(rec)
    known = _first_label(session, rec.id)
    if known is not None:
        case["truth"] = known
    apply(session, tally([(_decision_dict(decision), case)], shards=SHARDS))
    return known is not None


def retract(session: Session, decision: Decision, rec: Recommendation) -> None:
    """Take one undone decision back out of the counts, with its accuracy if its outcome is known.

    It comes out of the shard it went into; a cell left with nothing in it is removed, so the
    breakdowns never list a site, segment or reason that no standing decision has.
    """
    case = _case_dict(rec)
    known = _first_labels(session, [rec.id]).get(rec.id)
    if known:
        case["truth"] = known[1]
    counts = tally([(_decision_dict(decision), case)], shards=SHARDS)
    apply(session, Counter({cell: -n for cell, n in counts.items()}))
    table = Base.metadata.tables["decision_counts"]
    for version_id, day, dimension, key, shard in sorted({(c[1], c[2], c[3], c[4], c[5]) for c in counts}):
        session.execute(
            delete(table).where(
                table.c.model_version_id == version_id,
                table.c.day == day,
                table.c.dimension == dimension,
                table.c.key == key,
                table.c.shard == shard,
                *[table.c[column] == 0 for column in COLUMNS],
            )
        )


def record_outcomes(session: Session, outcome_ids: Sequence[int]) -> None:
    """Count the accuracy of decided cases whose first label outcome is among these new outcomes."""
    if not outcome_ids:
        return
    new = set(outcome_ids)
    touched = session.scalars(select(Outcome.recommendation_id).where(Outcome.id.in_(list(new)))).all()
    firsts = {rec_id: label for rec_id, (oid, label) in _first_labels(session, touched).items() if oid in new}
    if not firsts:
        return
    rows = session.execute(_decision_rows().where(Decision.recommendation_id.in_(list(firsts))))
    labels = _version_labels(session)
    pairs = [
        (
            dict(r._mapping),
            {**r._mapping, "model_version": labels[r.model_version_id], "truth": firsts[r.recommendation_id]},
        )
        for r in rows
    ]
    apply(session, tally(pairs, decisions=False, shards=SHARDS))


def _decision_rows() -> Any:
    """The decision and case columns the counts need, one row per decision."""
    return select(
        Decision.id,
        Decision.recommendation_id,
        Decision.reviewer_id,
        Decision.reason_code,
        Decision.final_action,
        Decision.action,
        Decision.ai_shown,
        Decision.opened_at,
        Decision.decided_at,
        Recommendation.model_id,
        Recommendation.model_version_id,
        Recommendation.site,
        Recommendation.confidence,
        Recommendation.recommended_action,
        readable_json(Recommendation.segment).label("segment"),
    ).join(Recommendation, Recommendation.id == Decision.recommendation_id)


def _version_labels(session: Session) -> dict[int, str]:
    """Version id -> label."""
    return {version_id: label for version_id, label in session.execute(select(ModelVersion.id, ModelVersion.version))}


def _decision_dict(decision: Decision) -> dict[str, Any]:
    """The fields of a decision the counts need."""
    return {
        "id": decision.id,
        "reviewer_id": decision.reviewer_id,
        "reason_code": decision.reason_code,
        "action": decision.action,
        "final_action": decision.final_action,
        "ai_shown": decision.ai_shown,
        "opened_at": decision.opened_at,
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
    """Recount everything from the decisions and outcomes (after a migration, or a hand edit)."""
    session.execute(delete(DecisionCount))
    labels = _version_labels(session)
    last = 0
    while True:
        batch = session.execute(_decision_rows().where(Decision.id > last).order_by(Decision.id).limit(chunk)).all()
        if not batch:
            break
        truth = _first_labels(session, [r.recommendation_id for r in batch])
        pairs = [
            (
                dict(r._mapping),
                {
                    **r._mapping,
                    "model_version": labels[r.model_version_id],
                    "truth": truth.get(r.recommendation_id, (None, None))[1],
                },
            )
            for r in batch
        ]
        apply(session, tally(pairs))
        last = batch[-1].id
