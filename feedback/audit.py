"""Append-only, hash-chained audit trail.

Every event's hash covers its content and the previous event's hash, so editing or deleting a
row breaks the chain from that point on. Appends lock the single `audit_head` row, which
serialises writers in the database and keeps the chain linear under concurrency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from feedback import bulk
from feedback.db import utcnow
from feedback.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
FEW_EVENTS = 20  # up to this many events are inserted with the head's update; more go by COPY


@dataclass(frozen=True)
class Actor:
    """Who caused a change: a user (by id and label) or the system."""

    id: int | None
    label: str


SYSTEM = Actor(None, "system")


@dataclass(frozen=True)
class Change:
    """One state change to be recorded."""

    action: str
    entity_type: str
    entity_id: str | int
    details: dict[str, Any] = field(default_factory=dict)


def canonical_json(value: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, ISO timestamps."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(value: Any) -> str:
    """Encode datetimes as UTC ISO text for canonical JSON."""
    if isinstance(value, datetime):
        return format_time(value)
    raise TypeError(f"cannot encode {type(value).__name__} in an audit event")


def format_time(value: datetime) -> str:
    """Fixed-width UTC timestamp used inside hashes."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """Hash of one event's content chained to its predecessor."""
    content = canonical_json(
        {
            "seq": row["seq"],
            "occurred_at": format_time(row["occurred_at"]),
            "actor_id": row["actor_id"],
            "actor": row["actor"],
            "action": row["action"],
            "entity_type": row["entity_type"],
            "entity_id": row["entity_id"],
            "details": row["details"],
        }
    )
    return hashlib.sha256(f"{prev_hash}\n{content}".encode()).hexdigest()


def record(session: Session, actor: Actor, changes: Sequence[Change]) -> None:
    """Append events for these changes inside the caller's transaction (which commits)."""
    if not changes:
        return
    head = session.execute(
        update(AuditHead)
        .where(AuditHead.id == 1)
        .values(seq=AuditHead.seq + len(changes))
        .returning(AuditHead.seq, AuditHead.last_hash)
    ).one()
    seq = head.seq - len(changes)
    prev = head.last_hash
    now = utcnow()
    rows = []
    for change in changes:
        seq += 1
        row = {
            "seq": seq,
            "occurred_at": now,
            "actor_id": actor.id,
            "actor": actor.label,
            "action": change.action,
            "entity_type": change.entity_type,
            "entity_id": str(change.entity_id),
            "details": canonical_json(change.details),
        }
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(prev, row)
        rows.append(row)
    move_head = update(AuditHead).where(AuditHead.id == 1).values(last_hash=prev)
    if len(rows) <= FEW_EVENTS and session.get_bind().dialect.name == "postgresql":
        # One round trip while the head is locked: the events go in by a CTE of the head's update.
        session.execute(move_head.add_cte(insert(AuditEvent).values(rows).cte("appended")))
        return
    bulk.insert_rows(session, AuditEvent, rows)
    session.execute(move_head)


@dataclass
class VerifyReport:
    """Outcome of checking the whole chain."""

    checked: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        """True when every link and hash checks out."""
        return not self.problems


def verify_chain(session: Session, chunk: int = 5000) -> VerifyReport:
    """Walk the chain in order and report every broken link, gap or altered row."""
    problems: list[str] = []
    expected_seq, prev, checked = 1, GENESIS_HASH, 0
    rows: Iterable[AuditEvent] = session.scalars(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=chunk)
    )
    for event in rows:
        if event.seq != expected_seq:
            problems.append(f"event #{expected_seq} is missing (next stored is #{event.seq})")
        if event.prev_hash != prev:
            problems.append(f"event #{event.seq} does not link to the event before it")
        recomputed = event_hash(event.prev_hash, event.__dict__)
        if recomputed != event.hash:
            problems.append(f"event #{event.seq} ({event.action}) was altered after it was written")
        prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
        if len(problems) >= 20:
            break
    head = session.get(AuditHead, 1)
    if head is None:
        problems.append("the audit head row is missing")
    elif not problems and (head.seq != checked or head.last_hash != prev):
        problems.append(f"the chain ends at #{checked} but {head.seq} events were written")
    return VerifyReport(checked=checked, problems=problems)
