"""Append-only, hash-chained audit trail.

Every event's hash covers its content and the previous event's hash, so editing or deleting a
row breaks the chain from that point on. Appends lock the single `audit_head` row, which
serialises writers in the database and keeps the chain linear under concurrency.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, select, text, update
from sqlalchemy.orm import Session

from feedback import bulk
from feedback.checkpoints import Checkpoint
from feedback.db import utcnow
from feedback.models import AuditEvent, AuditHead

GENESIS_HASH = "0" * 64
FEW_EVENTS = 20  # up to this many events are appended by the database function; more go by COPY
APPEND = text(
    "SELECT countersign_audit_append(:occurred_at, :actor_id, :actor, :action, :entity_type, :entity_id, "
    ":details, :prefix)"
)

# Built once: building these statements cost more than running them on every decision.
ADVANCE_HEAD = (
    update(AuditHead)
    .where(AuditHead.id == 1)
    .values(seq=AuditHead.seq + bindparam("n"))
    .returning(AuditHead.seq, AuditHead.last_hash)
)
SET_HEAD = update(AuditHead).where(AuditHead.id == 1).values(last_hash=bindparam("last_hash"))


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
    return hashlib.sha256(f"{prev_hash}\n{canonical_json(_hashed(row))}".encode()).hexdigest()


def hash_prefix(row: dict[str, Any]) -> str:
    """An event's canonical text up to its sequence number: `seq` sorts last, so the text is this + seq + "}"."""
    content = canonical_json({key: value for key, value in _hashed(row).items() if key != "seq"})
    return content[:-1] + ',"seq":'


def _hashed(row: dict[str, Any]) -> dict[str, Any]:
    """The fields an event's hash covers, as they enter its canonical text."""
    return {
        "seq": row.get("seq"),
        "occurred_at": format_time(row["occurred_at"]),
        "actor_id": row["actor_id"],
        "actor": row["actor"],
        "action": row["action"],
        "entity_type": row["entity_type"],
        "entity_id": row["entity_id"],
        "details": row["details"],
    }


def record(session: Session, actor: Actor, changes: Sequence[Change]) -> None:
    """Append events for these changes inside the caller's transaction (which commits)."""
    if not changes:
        return
    now = utcnow()
    rows = [
        {
            "occurred_at": now,
            "actor_id": actor.id,
            "actor": actor.label,
            "action": change.action,
            "entity_type": change.entity_type,
            "entity_id": str(change.entity_id),
            "details": canonical_json(change.details),
        }
        for change in changes
    ]
    if len(rows) <= FEW_EVENTS and session.get_bind().dialect.name == "postgresql":
        # One round trip holds the chain head (migration 0010): the hashes are computed in the database.
        params = {name: [row[name] for row in rows] for name in ("action", "entity_type", "entity_id", "details")}
        params["prefix"] = [hash_prefix(row) for row in rows]
        session.execute(APPEND, {"occurred_at": now, "actor_id": actor.id, "actor": actor.label, **params})
        return
    head = session.execute(ADVANCE_HEAD, {"n": len(rows)}).one()
    seq, prev = head.seq - len(rows), head.last_hash
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = prev
        row["hash"] = prev = event_hash(prev, row)
    bulk.insert_rows(session, AuditEvent, rows)
    session.execute(SET_HEAD, {"last_hash": prev})


@dataclass
class VerifyReport:
    """Outcome of checking the whole chain."""

    checked: int
    problems: list[str]
    anchored: int = 0  # signed checkpoints the chain matched

    @property
    def ok(self) -> bool:
        """True when every link and hash checks out."""
        return not self.problems


def verify_chain(session: Session, chunk: int = 5000, anchors: Mapping[int, Checkpoint] | None = None) -> VerifyReport:
    """Walk the chain in order and report every broken link, gap or altered row.

    `anchors` are signed checkpoints by sequence number (feedback/checkpoints.py): each event a
    checkpoint saw must still exist with the hash it had, which a rewrite with recomputed
    hashes cannot fake.
    """
    anchors = anchors or {}
    problems: list[str] = []
    expected_seq, prev, checked, anchored, last_good = 1, GENESIS_HASH, 0, 0, 0
    rows: Iterable[AuditEvent] = session.scalars(
        select(AuditEvent).order_by(AuditEvent.seq).execution_options(yield_per=chunk)
    )
    complete = True
    for event in rows:
        if event.seq != expected_seq:
            problems.append(f"event #{expected_seq} is missing (next stored is #{event.seq})")
        if event.prev_hash != prev:
            problems.append(f"event #{event.seq} does not link to the event before it")
        recomputed = event_hash(event.prev_hash, event.__dict__)
        if recomputed != event.hash:
            problems.append(f"event #{event.seq} ({event.action}) was altered after it was written")
        anchor = anchors.get(event.seq)
        if anchor is not None and anchor.hash != event.hash:
            problems.append(
                f"event #{event.seq} differs from the signed checkpoint of {anchor.at}: "
                f"history after #{last_good} and up to #{event.seq} was rewritten"
            )
        elif anchor is not None:
            anchored, last_good = anchored + 1, event.seq
        prev, expected_seq, checked = event.hash, event.seq + 1, checked + 1
        if len(problems) >= 20:
            complete = False
            break
    beyond = [seq for seq in anchors if seq >= expected_seq]
    if complete and beyond:
        latest = anchors[max(beyond)]
        problems.append(
            f"a signed checkpoint of {latest.at} saw event #{latest.seq}, but the chain ends at "
            f"#{expected_seq - 1}: events were removed from its end"
        )
    head = session.get(AuditHead, 1)
    if head is None:
        problems.append("the audit head row is missing")
    elif not problems and (head.seq != checked or head.last_hash != prev):
        problems.append(f"the chain ends at #{checked} but {head.seq} events were written")
    return VerifyReport(checked=checked, problems=problems, anchored=anchored)
