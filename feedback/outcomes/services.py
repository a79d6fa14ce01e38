"""Outcomes reported by other systems: what later turned out to be true for a case."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.audit import Actor, Change, canonical_json
from feedback.errors import Conflict, Problems, RepeatedInRequest
from feedback.models import Model, Outcome, Recommendation
from feedback.overrides import guardrails, rollup
from feedback.permissions import Action
from feedback.schemas import OutcomeIn


@dataclass(frozen=True)
class StoredOutcome:
    """Where one outcome is stored and whether this call created it."""

    id: int
    recommendation_id: int
    source: str
    created: bool


def outcome_hash(item: OutcomeIn, recommendation_id: int) -> str:
    """Fingerprint of an outcome's content, however the case was named."""
    content = {
        "case": recommendation_id,
        "outcome": item.outcome,
        "observed_at": item.observed_at,
        "source": item.source,
    }
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def outcome_row(item: OutcomeIn, recommendation_id: int, fingerprint: str) -> dict[str, Any]:
    """The row stored for a checked outcome of a case: a label or a number."""
    return {
        "recommendation_id": recommendation_id,
        "source": item.source,
        "label": item.outcome if isinstance(item.outcome, str) else None,
        "value": None if isinstance(item.outcome, str) else float(item.outcome),
        "observed_at": item.observed_at,
        "payload_hash": fingerprint,
    }


def count_and_audit(session: Session, actor: Actor, *, rows: Sequence[dict[str, Any]], ids: list[int]) -> None:
    """What storing outcomes entails besides the rows: the rollup's accuracy counts and one audit event each."""
    rollup.record_outcomes(session, ids)
    changes = [
        Change(
            "outcome.recorded", "recommendation", row["recommendation_id"], {"source": row["source"], "outcome_id": i}
        )
        for row, i in zip(rows, ids, strict=True)
    ]
    audit.record(session, actor, changes)


def record_outcomes(session: Session, actor: Actor, *, items: Sequence[OutcomeIn]) -> list[StoredOutcome]:
    """Store outcomes all-or-nothing; idempotent on (case, source), a changed payload is a conflict."""
    try:
        return _record(session, actor, items)
    except IntegrityError:
        session.rollback()  # a concurrent request stored one of these first; judge again
        return _record(session, actor, items)


def _record(session: Session, actor: Actor, items: Sequence[OutcomeIn]) -> list[StoredOutcome]:
    """One attempt at `record_outcomes`."""
    permissions.require(actor, Action.SEND_CASES, session=session)
    problems = _resolve_cases(session, items)
    cases = problems.cases
    named = [rec_id for rec_id, _ in cases.values()]
    for model_id in session.scalars(select(Recommendation.model_id).where(Recommendation.id.in_(named)).distinct()):
        permissions.require(actor, Action.SEND_CASES, session=session, model_id=model_id)  # its owners' feeds only
    for index, item in enumerate(items):
        if index in cases and isinstance(item.outcome, str) and item.outcome not in cases[index][1]:
            labels = ", ".join(cases[index][1])
            problems.disallowed[f"[{index}].outcome"] = f"a label must be one of {labels} (or send a number)"
    bad_items = len({k.split("]")[0] for k in problems.fields})
    problems.raise_any(f"{bad_items} item(s) are invalid; nothing was stored")

    fields: dict[str, str] = {}

    keyed: dict[tuple[int, str], tuple[int, str]] = {}
    for index, item in enumerate(items):
        rec_id = cases[index][0]
        fingerprint = outcome_hash(item, rec_id)
        key = (rec_id, item.source)
        if key in keyed and keyed[key][1] != fingerprint:
            fields[f"[{index}].source"] = f"repeats item [{keyed[key][0]}] with a different outcome"
        keyed.setdefault(key, (index, fingerprint))
    if fields:
        raise RepeatedInRequest("the batch contradicts itself; nothing was stored", fields)

    existing = {
        (rec_id, source): (outcome_id, stored)
        for outcome_id, rec_id, source, stored in session.execute(
            select(Outcome.id, Outcome.recommendation_id, Outcome.source, Outcome.payload_hash).where(
                tuple_(Outcome.recommendation_id, Outcome.source).in_(list(keyed))
            )
        )
    }
    conflicts = {
        f"[{index}].source": "an outcome from this source is already stored with a different value"
        for key, (index, fingerprint) in keyed.items()
        if key in existing and existing[key][1] != fingerprint
    }
    if conflicts:
        raise Conflict(f"{len(conflicts)} outcome(s) conflict with stored ones; nothing was stored", conflicts)

    rows = [outcome_row(items[index], key[0], fingerprint) for key, (index, fingerprint) in keyed.items()]
    rows = [row for row in rows if (row["recommendation_id"], row["source"]) not in existing]
    created: dict[tuple[int, str], int] = {}
    if rows:
        ids = session.scalars(insert(Outcome).returning(Outcome.id, sort_by_parameter_order=True), rows).all()
        created = {(r["recommendation_id"], r["source"]): i for r, i in zip(rows, ids, strict=True)}
        count_and_audit(session, actor, rows=rows, ids=list(ids))
    session.commit()
    if rows:
        versions = session.scalars(
            select(Recommendation.model_version_id)
            .where(Recommendation.id.in_([r["recommendation_id"] for r in rows]))
            .distinct()
        ).all()
        guardrails.check_after_change(session, list(versions))
    results = []
    for index, item in enumerate(items):
        key = (cases[index][0], item.source)
        if key in created:
            results.append(StoredOutcome(created[key], key[0], item.source, True))
        else:
            results.append(StoredOutcome(existing[key][0], key[0], item.source, False))
    return results


class CaseProblems(Problems):
    """The faults found while naming cases, and each found item's case as (recommendation id, model actions)."""

    def __init__(self) -> None:
        super().__init__()
        self.cases: dict[int, tuple[int, list[str]]] = {}


def _resolve_cases(session: Session, items: Sequence[OutcomeIn]) -> CaseProblems:
    """Each item's case, and the fields naming unknown cases (404) or naming none (422)."""
    by_id = {i.recommendation_id for i in items if i.recommendation_id is not None}
    by_key = {(i.model, i.external_id) for i in items if i.model is not None and i.external_id is not None}
    known_ids: dict[int, list[str]] = {
        rec_id: actions
        for rec_id, actions in session.execute(
            select(Recommendation.id, Model.actions)
            .join(Model, Model.id == Recommendation.model_id)
            .where(Recommendation.id.in_(by_id))
        )
    }
    known_keys: dict[tuple[str, str], tuple[int, list[str]]] = {
        (key, ext): (rec_id, actions)
        for rec_id, key, ext, actions in session.execute(
            select(Recommendation.id, Model.key, Recommendation.external_id, Model.actions)
            .join(Model, Model.id == Recommendation.model_id)
            .where(tuple_(Model.key, Recommendation.external_id).in_(list(by_key)))
        )
    }
    found = CaseProblems()
    cases, fields = found.cases, found.unknown
    for index, item in enumerate(items):
        if item.recommendation_id is not None and item.model is None and item.external_id is None:
            if item.recommendation_id in known_ids:
                cases[index] = (item.recommendation_id, known_ids[item.recommendation_id])
            else:
                fields[f"[{index}].recommendation_id"] = f"no case {item.recommendation_id}"
        elif item.recommendation_id is None and item.model is not None and item.external_id is not None:
            hit = known_keys.get((item.model, item.external_id))
            if hit:
                cases[index] = hit
            else:
                fields[f"[{index}].external_id"] = f"no case {item.external_id!r} for model {item.model!r}"
        else:
            found.invalid[f"[{index}].recommendation_id"] = (
                "name the case by recommendation_id, or by model and external_id"
            )
    return found
