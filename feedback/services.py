"""Every write in Countersign: validate, change, audit, commit.

Services take plain arguments and a session; the HTML views, the JSON API and the CLI all
call these same functions.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError

from feedback import (
    audit,
    bulk,
    decision_exceptions,
    experiments,
    guardrails,
    metrics,
    permissions,
    queries,
    rollup,
    webhooks,
)

# Users, sign-in and tokens live in feedback.accounts; they stay reachable here with every other write.
from feedback.accounts import (  # noqa: F401
    actor_of,
    authenticate,
    change_password,
    create_token,
    create_user,
    deactivate_user,
    end_user_sessions,
    reactivate_user,
    record_logout,
    revoke_token,
    set_password,
    set_role,
    user_for_token,
)
from feedback.audit import Actor, Change, canonical_json
from feedback.db import UTCDateTime, utcnow
from feedback.errors import (
    AlreadyDecided,
    ClaimedByOther,
    Conflict,
    DecisionFinal,
    NotAllowedByConfiguration,
    NotFound,
    NotShown,
    PermissionDenied,
    Problems,
    ValidationFailed,
)
from feedback.models import (
    STAGES,
    Decision,
    DecisionException,
    Model,
    ModelOwner,
    ModelVersion,
    Recommendation,
    User,
)
from feedback.permissions import Action
from feedback.schemas import ModelIn, ModelVersionIn, RecommendationIn

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CLAIM_MINUTES = 5
# A decision on the review screen this soon after the case was opened is flagged `quick`: too
# soon to have read the recommendation and its explanation (docs/product.md).
QUICK_DECISION_SECONDS = 2.0
# A reviewer may take back their last decision for this long; after it the decision is final.
UNDO_SECONDS = 10
# Exceptions a decision itself opens (and an undo withdraws while nobody has started on them).
DECISION_EXCEPTION_KINDS = ("reviewer_escalation", "audit_sample")


# --- models and versions ----------------------------------------------------------------


def register_model(session: Session, actor: Actor, spec: ModelIn) -> Model:
    """Register a model with its actions and reason codes."""
    problems = Problems()
    if len(set(spec.actions)) != len(spec.actions):
        problems.invalid["actions"] = "must not repeat an action"  # the schema's uniqueItems says so
    codes = [r.code for r in spec.reason_codes]
    if len(set(codes)) != len(codes):
        problems.repeated["reason_codes"] = "must not repeat a code"  # a property of objects: no schema says so
    for code in spec.action_labels:
        if code not in spec.actions:
            problems.disallowed[f"action_labels.{code}"] = "labels an action the model does not have"
    problems.raise_any("the model is invalid")
    if session.scalar(select(Model.id).where(Model.key == spec.key)) is not None:
        raise Conflict(f"a model with key {spec.key!r} already exists", {"key": "already registered"})
    model = Model(
        key=spec.key,
        name=spec.name,
        description=spec.description,
        actions=list(spec.actions),
        reason_codes=[r.model_dump() for r in spec.reason_codes],
        action_labels=dict(spec.action_labels),
        segment_labels={k: v.model_dump() for k, v in spec.segment_labels.items()},
    )
    session.add(model)
    session.flush()
    changes = [Change("model.registered", "model", model.id, spec.model_dump())]
    registrant = session.get(User, actor.id) if actor.id is not None else None
    if registrant is not None and registrant.role == "model_owner":
        # Whoever registers a model owns it until an admin says otherwise.
        session.add(ModelOwner(model_id=model.id, user_id=registrant.id))
        changes.append(Change("model.owners_changed", "model", model.id, {"added": [registrant.email], "removed": []}))
    audit.record(session, actor, changes)
    session.commit()
    return model


def set_model_owners(session: Session, admin: User, *, model_key: str, owner_emails: Sequence[str]) -> list[User]:
    """Replace a model's owners (admins only); each must be an active model owner."""
    permissions.require(admin, Action.ADMINISTER)
    model = get_model(session, model_key)
    wanted = sorted({e.strip().lower() for e in owner_emails if e.strip()})
    found = {u.email: u for u in session.scalars(select(User).where(User.email.in_(wanted)))}
    # Someone who is no user is not an active model owner either: 409, as a 404 here would say the model is gone.
    bad = [e for e in wanted if e not in found or not found[e].active or found[e].role != "model_owner"]
    if bad:
        raise NotAllowedByConfiguration(
            "only active model owners can own a model", {"owners": f"not an active model owner: {', '.join(bad)}"}
        )
    current = {o.user.email: o for o in session.scalars(select(ModelOwner).where(ModelOwner.model_id == model.id))}
    added = [e for e in wanted if e not in current]
    removed = sorted(e for e in current if e not in found)
    for email in removed:
        session.delete(current[email])
    session.add_all(ModelOwner(model_id=model.id, user_id=found[e].id) for e in added)
    if added or removed:
        audit.record(
            session,
            actor_of(admin),
            [Change("model.owners_changed", "model", model.id, {"added": added, "removed": removed})],
        )
    session.commit()
    return [found[e] for e in wanted]


def get_model(session: Session, key: str) -> Model:
    """The model with this key, or NotFound."""
    model = session.scalar(select(Model).where(Model.key == key))
    if model is None:
        raise NotFound(f"no model {key!r}", {"model": "unknown model"})
    return model


def add_model_version(session: Session, actor: Actor, *, model_key: str, spec: ModelVersionIn) -> ModelVersion:
    """Register a new version of a model."""
    model = get_model(session, model_key)
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=model.id)
    exists = select(ModelVersion.id).where(ModelVersion.model_id == model.id, ModelVersion.version == spec.version)
    if session.scalar(exists) is not None:
        raise Conflict(f"{model.key} already has version {spec.version}", {"version": "already registered"})
    version = ModelVersion(model_id=model.id, version=spec.version, stage=spec.stage, notes=spec.notes)
    session.add(version)
    session.flush()
    audit.record(
        session,
        actor,
        [Change("model_version.registered", "model_version", version.id, {"model": model.key, **spec.model_dump()})],
    )
    webhooks.enqueue(
        session,
        "model_version.created",
        {"model": model.key, "version": version.version, "stage": version.stage, "id": version.id},
    )
    session.commit()
    webhooks.deliver_soon()
    return version


def set_version_stage(session: Session, actor: Actor, *, version_id: int, stage: str) -> ModelVersion:
    """Move a version to another stage (paused and shadow versions are hidden from reviewers)."""
    if stage not in STAGES:
        raise ValidationFailed("unknown stage", {"stage": f"must be one of {', '.join(STAGES)}"})
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    permissions.require(actor, Action.CHANGE_MODEL, session=session, model_id=version.model_id)
    before = version.stage
    version.stage = stage
    audit.record(
        session,
        actor,
        [Change("model_version.stage_changed", "model_version", version.id, {"from": before, "to": stage})],
    )
    session.commit()
    return version


# --- ingest -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Ingested:
    """Where one recommendation is stored and whether this call created it."""

    id: int
    external_id: str
    created: bool


def payload_hash(item: RecommendationIn) -> str:
    """Fingerprint of a recommendation's content, independent of key order, spacing and omitted defaults."""
    content = item.model_dump(mode="json", exclude_defaults=True)
    return hashlib.sha256(canonical_json(content).encode()).hexdigest()


def recommendation_row(item: RecommendationIn, version: ModelVersion, fingerprint: str) -> dict[str, Any]:
    """The row to insert for a validated recommendation, routed by its version's exception rules."""
    raised = decision_exceptions.rules_raise(item, version.rules or {})
    explanation = item.explanation.model_dump(mode="json") if item.explanation else {"summary": "", "factors": []}
    return {
        "model_id": version.model_id,
        "model_version_id": version.id,
        "external_id": item.external_id,
        "subject": item.subject,
        "site": item.site,
        "segment": item.segment,
        "recommended_action": item.recommended_action,
        "confidence": item.confidence,
        "explanation": explanation,
        "features": item.features,
        "flags": item.flags,
        "error": item.error,
        "payload_hash": fingerprint,
        "due_at": item.due_at,
        "status": "exception" if raised else "open",
        "row_version": 1,
        "raised": raised,
    }


def store_recommendations(session: Session, actor: Actor, rows: list[dict[str, Any]]) -> list[int]:
    """Insert recommendation rows and the exceptions their rules raised, with audit events; return the ids.

    The caller commits. Rows may carry `created_at` (the demo's history) and must carry `raised`.
    """
    if not rows:
        return []
    raised = [row.pop("raised") for row in rows]
    ids = bulk.insert_returning_ids(session, Recommendation, rows)
    changes = [
        Change(
            "recommendation.ingested",
            "recommendation",
            rec_id,
            {"external_id": r["external_id"], "payload_hash": r["payload_hash"]},
        )
        for r, rec_id in zip(rows, ids, strict=True)
    ]
    policies = decision_exceptions.sla_hours(session, list({r["model_id"] for r in rows}))
    exceptions = []
    for row, rec_id, hit in zip(rows, ids, raised, strict=True):
        if hit is None:
            continue
        opened = row.get("created_at") or utcnow()
        exceptions.append(
            {
                "recommendation_id": rec_id,
                "model_id": row["model_id"],
                "site": row["site"],
                "kind": hit.kind,
                "severity": hit.severity,
                "reason": hit.reason,
                "opened_at": opened,
                "status": "open",
                "sla_due_at": decision_exceptions.sla_due(policies, row["model_id"], hit.kind, hit.severity, opened),
                "resolution_note": "",
                "row_version": 1,
            }
        )
    if exceptions:
        exception_ids = bulk.insert_returning_ids(session, DecisionException, exceptions)
        changes += [
            Change(
                "exception.raised",
                "exception",
                exc_id,
                {"recommendation_id": e["recommendation_id"], "kind": e["kind"], "reason": e["reason"]},
            )
            for e, exc_id in zip(exceptions, exception_ids, strict=True)
        ]
    audit.record(session, actor, changes)
    return ids


def ingest_recommendations(session: Session, actor: Actor, items: Sequence[RecommendationIn]) -> list[Ingested]:
    """Store a batch all-or-nothing; replaying an identical item is a no-op, a changed one a conflict."""
    try:
        return _ingest(session, actor, items)
    except IntegrityError:
        # Another request stored one of these external ids between our check and our insert:
        # start again so it is judged as a replay or a conflict like any other.
        session.rollback()
        return _ingest(session, actor, items)


def _action_or_error(item: RecommendationIn, index: int) -> dict[str, str]:
    """A recommendation carries an action, a confidence and an explanation, or else an error."""
    if item.error is not None:
        both = [n for n in ("recommended_action", "confidence") if getattr(item, n) is not None]
        return {f"[{index}].{n}": "must be absent when the model sent an error" for n in both}
    return {
        f"[{index}].{n}": "Field required (or send error if the model failed)"
        for n in ("recommended_action", "confidence", "explanation")
        if getattr(item, n) is None
    }


def _stored(session: Session, keys: list[tuple[int, str]]) -> dict[tuple[int, str], tuple[int, str]]:
    """Id and payload hash of the recommendations already stored under these (model id, external id) keys."""
    by_model: dict[int, list[str]] = {}
    for model_id, external_id in keys:
        by_model.setdefault(model_id, []).append(external_id)
    # One query per model, so the (model_id, external_id) index serves it: a row-value IN
    # over 1,000 pairs took 80 ms on PostgreSQL, this takes 3 ms.
    found = {}
    for model_id, external_ids in by_model.items():
        rows = session.execute(
            select(Recommendation.id, Recommendation.external_id, Recommendation.payload_hash).where(
                Recommendation.model_id == model_id, bulk.among(session, Recommendation.external_id, external_ids)
            )
        )
        found.update({(model_id, external_id): (rec_id, stored_hash) for rec_id, external_id, stored_hash in rows})
    return found


def _ingest(session: Session, actor: Actor, items: Sequence[RecommendationIn]) -> list[Ingested]:
    """One attempt at `ingest_recommendations`."""
    models = {m.key: m for m in session.scalars(select(Model).where(Model.key.in_({i.model for i in items})))}
    versions = {
        (v.model_id, v.version): v
        for v in session.scalars(select(ModelVersion).where(ModelVersion.model_id.in_([m.id for m in models.values()])))
    }
    problems = Problems()
    first_seen: dict[tuple[int, str], int] = {}
    hashes = [payload_hash(item) for item in items]
    for index, item in enumerate(items):
        problems.invalid.update(_action_or_error(item, index))
        model = models.get(item.model)
        if model is None:
            problems.unknown[f"[{index}].model"] = f"unknown model {item.model!r}"
            continue
        if (model.id, item.model_version) not in versions:
            problems.unknown[f"[{index}].model_version"] = f"{item.model} has no version {item.model_version!r}"
        if item.recommended_action is not None and item.recommended_action not in model.actions:
            problems.disallowed[f"[{index}].recommended_action"] = f"must be one of {', '.join(model.actions)}"
        key = (model.id, item.external_id)
        if key in first_seen and hashes[first_seen[key]] != hashes[index]:
            problems.repeated[f"[{index}].external_id"] = f"repeats item [{first_seen[key]}] with a different payload"
        first_seen.setdefault(key, index)
    bad_items = len({k.split("]")[0] for k in problems.fields})
    problems.raise_any(f"{bad_items} item(s) are invalid; nothing was stored")

    existing = _stored(session, list(first_seen))
    conflicts = {
        f"[{index}].external_id": "already stored with a different payload"
        for index, item in enumerate(items)
        if (found := existing.get((models[item.model].id, item.external_id))) and found[1] != hashes[index]
    }
    if conflicts:
        raise Conflict(f"{len(conflicts)} item(s) conflict with stored recommendations; nothing was stored", conflicts)

    new_rows = [
        recommendation_row(items[index], versions[(key[0], items[index].model_version)], hashes[index])
        for key, index in first_seen.items()
        if key not in existing
    ]
    stored = store_recommendations(session, actor, new_rows)
    new_ids = {(r["model_id"], r["external_id"]): i for r, i in zip(new_rows, stored, strict=True)}
    session.commit()
    model_keys = {m.id: m.key for m in models.values()}
    for model_id, count in Counter(model_id for model_id, _ in new_ids).items():
        metrics.ingested(model_keys[model_id], count)
    results = []
    for item in items:
        key = (models[item.model].id, item.external_id)
        if key in new_ids:
            results.append(Ingested(new_ids[key], item.external_id, True))
        else:
            results.append(Ingested(existing[key][0], item.external_id, False))
    return results


# --- claims and decisions -----------------------------------------------------------------


def _claimable(reviewer: User, now: datetime) -> ColumnElement[bool]:
    """SQL condition: open and free, expired, or already this reviewer's."""
    return (Recommendation.status == "open") & or_(
        Recommendation.claimed_by_id.is_(None),
        Recommendation.claimed_by_id == reviewer.id,
        Recommendation.claim_expires_at < now,
    )


def claim_case(
    session: Session, *, recommendation_id: int, reviewer: User, now: datetime | None = None
) -> Recommendation:
    """Claim a case for a few minutes (renewing one's own claim); raise if someone else holds it."""
    permissions.require(reviewer, Action.REVIEW)
    now = now or utcnow()
    claimed = _try_claim(session, Recommendation.id == recommendation_id, reviewer, now)
    rec = queries.case_detail(session, recommendation_id)  # with what the review screen shows
    if rec is None:
        raise NotFound(f"no case {recommendation_id}")
    if claimed is None:
        session.rollback()
        if rec.status != "open":
            raise AlreadyDecided(_closed_message(rec))
        raise ClaimedByOther(claimed_message(rec, reviewer))
    _finish_claim(session, rec, reviewer, now, claimed[1])
    return rec


def claim_next(
    session: Session,
    *,
    reviewer: User,
    model_id: int | None = None,
    site: str | None = None,
    after_id: int | None = None,
) -> Recommendation | None:
    """Claim the most urgent open case that nobody else holds (optionally filtered)."""
    permissions.require(reviewer, Action.REVIEW)
    now = utcnow()
    query = select(Recommendation.id).where(_claimable(reviewer, now))
    if model_id:
        query = query.where(Recommendation.model_id == model_id)
    if site:
        query = query.where(Recommendation.site == site)
    if after_id:
        query = query.where(Recommendation.id != after_id)
    # SKIP LOCKED (PostgreSQL): reviewers asking at once get different cases instead of queueing on one.
    # Found and claimed in one statement: one round trip, and only the claimed row is locked.
    most_urgent = query.order_by(*queries.MOST_URGENT_FIRST).limit(1).with_for_update(skip_locked=True)
    claimed = _try_claim(session, Recommendation.id == most_urgent.scalar_subquery(), reviewer, now)
    if claimed is None:
        session.rollback()
        return None
    # Loaded with everything the review screen shows, so the caller need not read it again.
    rec = queries.case_detail(session, claimed[0])
    assert rec is not None
    _finish_claim(session, rec, reviewer, now, claimed[1])
    return rec


def _finish_claim(session: Session, rec: Recommendation, reviewer: User, now: datetime, new: bool) -> None:
    """Record the exposure and (for a new claim) the audit event, then commit.

    The audit append comes last because it locks the chain head until the commit.
    """
    experiments.expose(session, rec, reviewer.id, now)
    if new:
        audit.record(session, actor_of(reviewer), [Change("case.claimed", "recommendation", rec.id)])
    session.commit()


def _try_claim(session: Session, which: ColumnElement[bool], reviewer: User, now: datetime) -> tuple[int, bool] | None:
    """Atomically claim or renew the case `which` picks: its id and whether the claim is new (not a
    renewal), or None when there is no such claimable case (someone else holds it, or it is closed)."""
    result = session.execute(
        update(Recommendation)
        .where(which, _claimable(reviewer, now))
        .values(
            claimed_at=case(
                (
                    (Recommendation.claimed_by_id == reviewer.id) & (Recommendation.claim_expires_at >= now),
                    Recommendation.claimed_at,
                ),
                else_=literal(now, UTCDateTime()),
            ),
            claimed_by_id=reviewer.id,
            claim_expires_at=now + timedelta(minutes=CLAIM_MINUTES),
            row_version=Recommendation.row_version + 1,
        )
        .returning(Recommendation.id, Recommendation.claimed_at)
        .execution_options(synchronize_session=False)
    ).first()
    if result is None:
        return None
    return result.id, bool(result.claimed_at == now)


def release_claim(session: Session, *, recommendation_id: int, reviewer: User) -> None:
    """Give a claimed case back to the queue."""
    released = session.execute(
        update(Recommendation)
        .where(
            Recommendation.id == recommendation_id,
            Recommendation.claimed_by_id == reviewer.id,
            Recommendation.status == "open",
        )
        .values(claimed_by_id=None, claimed_at=None, claim_expires_at=None, row_version=Recommendation.row_version + 1)
        .returning(Recommendation.id)
        .execution_options(synchronize_session=False)
    ).first()
    if released is not None:
        audit.record(session, actor_of(reviewer), [Change("case.released", "recommendation", recommendation_id)])
    session.commit()


def record_decision(
    session: Session,
    *,
    recommendation_id: int,
    reviewer: User,
    action: str,
    final_action: str | None = None,
    reason_code: str | None = None,
    note: str = "",
    channel: str = "ui",
    shown_claim: int | None = None,
) -> Decision:
    """Countersign a case: accept, override (with a reason code) or escalate (with a note).

    When the recommendation was not shown (shadow or paused version) the reviewer decided
    unaided: `final_action` is required and the action is derived from whether it agrees.

    `shown_claim` (the review screen passes it) is the `claim_stamp` of the claim under which the
    case was shown to this reviewer: the decision is refused (NotShown) unless they still hold
    that very claim, so a key press meant for one case never lands on another.
    """
    permissions.require(reviewer, Action.REVIEW)
    now = utcnow()
    rec = session.get(
        Recommendation,
        recommendation_id,
        # The decision (none yet, for an open case) is joined so that linking the new one needs no query.
        options=[
            joinedload(Recommendation.model),
            joinedload(Recommendation.model_version),
            joinedload(Recommendation.decision),
        ],
        populate_existing=True,
    )
    if rec is None:
        raise NotFound(f"no case {recommendation_id}")
    if rec.status != "open":
        raise AlreadyDecided(_closed_message(rec))
    if rec.claimed_by_id not in (None, reviewer.id) and rec.claim_expires_at and rec.claim_expires_at > now:
        raise ClaimedByOther(claimed_message(rec, reviewer))
    if shown_claim is not None and (rec.claimed_by_id != reviewer.id or claim_stamp(rec) != shown_claim):
        raise NotShown(f"case {rec.external_id} is not the case you were shown; open it again to decide it")

    model = rec.model
    # The arm is recomputed here (it is deterministic) so API decisions obey the experiment too.
    assignment = experiments.expose(session, rec, reviewer.id, now)
    ai_shown = experiments.ai_shown_for(rec.model_version, assignment)
    note = (note or "").strip()
    reason_code = reason_code or None
    action, final_action = _checked_decision(rec, ai_shown, action, final_action or None, reason_code, note)

    opened_at = rec.claimed_at if rec.claimed_by_id == reviewer.id and rec.claimed_at else now
    quick = channel == "ui" and (now - opened_at).total_seconds() < QUICK_DECISION_SECONDS
    decision = Decision(
        recommendation=rec,
        model_id=rec.model_id,
        model_version_id=rec.model_version_id,
        reviewer_id=reviewer.id,
        action=action,
        final_action=final_action,
        reason_code=reason_code,
        note=note,
        opened_at=opened_at,
        decided_at=now,
        ai_shown=ai_shown,
        channel=channel,
        quick=quick,
    )
    rec.status = "escalated" if action == "escalate" else "decided"
    rec.claimed_by_id = rec.claimed_at = rec.claim_expires_at = None
    session.add(decision)
    try:
        session.flush()
    except (IntegrityError, StaleDataError):
        # The unique decision per case (or the row version) lost a race with another reviewer.
        session.rollback()
        raise AlreadyDecided(f"case {recommendation_id} has just been decided by someone else") from None
    labelled = rollup.record(session, decision, rec)
    changes: list[Change] = []
    if action == "escalate":
        exc = decision_exceptions.open_exception(
            session, rec, kind="reviewer_escalation", reason=note or model.reason_label(reason_code), raised_by=reviewer
        )
        changes.append(Change("exception.raised", "exception", exc.id, {"recommendation_id": rec.id, "kind": exc.kind}))
    elif action == "accept" and decision_exceptions.in_audit_sample(
        rec.id, float((rec.model_version.rules or {}).get("audit_sample_rate") or 0)
    ):
        exc = decision_exceptions.open_exception(
            session, rec, kind="audit_sample", reason="random second review of an accepted case", raised_by=None
        )
        changes.append(Change("exception.raised", "exception", exc.id, {"recommendation_id": rec.id, "kind": exc.kind}))
    decided = Change(
        f"decision.{action}",
        "recommendation",
        rec.id,
        {
            "decision_id": decision.id,
            "final_action": final_action,
            "reason_code": reason_code,
            "ai_shown": ai_shown,
            "channel": channel,
            **({"quick": True} if quick else {}),
            **({"experiment_id": assignment.experiment_id, "arm": assignment.arm} if assignment else {}),
        },
    )
    audit.record(session, actor_of(reviewer), [decided, *changes])
    session.commit()
    metrics.decided(model.key, action, reason_code)
    guardrails.check_after_change(session, [rec.model_version_id], accuracy=labelled)
    return decision


def _checked_decision(
    rec: Recommendation, ai_shown: bool, action: str, final_action: str | None, reason_code: str | None, note: str
) -> tuple[str, str | None]:
    """The decision's action and final action once valid for this case, or the problems it has.

    Rules of the request alone (the schema states them) are 422; what this case and its model
    allow (their actions, reason codes, whether the AI was shown) is 409. Decided without the AI,
    the action follows from whether the reviewer's final action agrees with the recommendation.
    """
    model = rec.model
    problems = Problems()
    fields, stored = problems.invalid, problems.disallowed
    if action not in ("accept", "override", "escalate"):
        fields["action"] = "must be accept, override or escalate"
    elif action == "escalate":
        if final_action:
            fields["final_action"] = "an escalated case has no final action yet"
        if not note and not reason_code:
            fields["note"] = "say why the case is escalated"
    elif action == "override" and final_action is None:
        fields["final_action"] = "an override names its final action"
    elif not ai_shown:
        if final_action not in model.actions:
            stored["final_action"] = f"the recommendation was hidden; choose one of {', '.join(model.actions)}"
        else:
            action = "accept" if final_action == rec.recommended_action else "override"
    elif action == "accept":
        if final_action not in (None, rec.recommended_action):
            stored["final_action"] = "accepting keeps the recommended action; use override to change it"
        final_action = rec.recommended_action
    else:
        if final_action not in model.actions:
            stored["final_action"] = f"must be one of {', '.join(model.actions)}"
        elif final_action == rec.recommended_action:
            stored["final_action"] = "an override must change the recommended action"
        if reason_code is None:
            stored["reason_code"] = "an override needs a reason code"
    if reason_code is not None and reason_code not in {r["code"] for r in model.reason_codes}:
        stored["reason_code"] = "must be one of " + ", ".join(r["code"] for r in model.reason_codes)
    if len(note) > 2000:
        fields["note"] = "must be at most 2000 characters"
    problems.raise_any("the decision is invalid")
    return action, final_action


def claim_stamp(rec: Recommendation) -> int | None:
    """The claim the case is held under, as microseconds since the epoch of its start (None: unclaimed).

    A new claim (after a release, an expiry taken over by someone else, or an undo) has a new stamp;
    renewing one's own claim keeps it.
    """
    if rec.claimed_at is None:
        return None
    return (rec.claimed_at - EPOCH) // timedelta(microseconds=1)


def retract_decision(
    session: Session, *, recommendation_id: int, reviewer: User, now: datetime | None = None
) -> Recommendation:
    """Undo one's last decision within UNDO_SECONDS: the case is open again and claimed by the same reviewer.

    Everything the decision did is taken back in the same transaction: the decision row, its counts
    in `decision_counts`, the exceptions it opened (refused once a handler has started on one), and
    the guardrail alerts raised since that no longer hold without it (a version one of them paused
    gets its stage back). The audit trail keeps the decision and records `decision.retracted`.
    """
    permissions.require(reviewer, Action.REVIEW)
    now = now or utcnow()
    decision = session.scalar(
        select(Decision)
        .where(Decision.recommendation_id == recommendation_id)
        .options(
            joinedload(Decision.recommendation).joinedload(Recommendation.model),
            joinedload(Decision.recommendation).joinedload(Recommendation.model_version),
        )
        .execution_options(populate_existing=True)
    )
    if decision is None:
        raise NotFound(f"case {recommendation_id} has no decision to undo")
    rec = decision.recommendation
    if decision.reviewer_id != reviewer.id:
        raise PermissionDenied(f"only the reviewer who decided case {rec.external_id} can undo it")
    final = f"your decision on case {rec.external_id} is final"
    if now - decision.decided_at > timedelta(seconds=UNDO_SECONDS):
        raise DecisionFinal(f"{final}: a decision can be undone for {UNDO_SECONDS} seconds")
    latest = session.scalar(select(func.max(Decision.id)).where(Decision.reviewer_id == reviewer.id))
    if latest != decision.id:
        raise DecisionFinal(f"{final}: only your last decision can be undone")
    if rec.status not in ("decided", "escalated"):
        raise DecisionFinal(f"{final}: the case has been {rec.status} since")
    raised = session.scalars(
        select(DecisionException).where(
            DecisionException.recommendation_id == rec.id, DecisionException.kind.in_(DECISION_EXCEPTION_KINDS)
        )
    ).all()
    if any(e.status != "open" or e.assignee_id is not None for e in raised):
        raise DecisionFinal(f"{final}: an exception handler has already taken it up")

    from feedback import guardrails

    retracted = {
        "decision_id": decision.id,
        "action": decision.action,
        "final_action": decision.final_action,
        "reason_code": decision.reason_code,
        "ai_shown": decision.ai_shown,
        "channel": decision.channel,
        "decided_at": decision.decided_at.isoformat(),
        "seconds_after": round((now - decision.decided_at).total_seconds(), 3),
    }
    action, version_id, decided_at = decision.action, rec.model_version_id, decision.decided_at
    rollup.retract(session, decision, rec)
    for exc in raised:
        session.delete(exc)
    session.delete(decision)
    rec.decision = None
    rec.status = "open"
    rec.claimed_by_id, rec.claimed_at = reviewer.id, now
    rec.claim_expires_at = now + timedelta(minutes=CLAIM_MINUTES)
    try:
        session.flush()
    except StaleDataError:
        session.rollback()
        raise Conflict(f"case {rec.external_id} changed just now; your decision stands") from None
    changes = [
        Change("decision.retracted", "recommendation", rec.id, retracted),
        *[
            Change("exception.withdrawn", "exception", exc.id, {"recommendation_id": rec.id, "kind": exc.kind})
            for exc in raised
        ],
        *guardrails.reconsider_alerts(session, version_id, since=decided_at),
        Change("case.claimed", "recommendation", rec.id),
    ]
    audit.record(session, actor_of(reviewer), changes)
    session.commit()
    metrics.retracted(rec.model.key, action)
    guardrails.check_after_change(session, [version_id])
    reopened = queries.case_detail(session, recommendation_id)
    assert reopened is not None
    return reopened


def claimed_message(rec: Recommendation, viewer: User) -> str:
    """Who holds a case and until when, naming them only to those who may see who they are."""
    holder = permissions.person_name(viewer, rec.claimed_by) or "another reviewer"
    until = f" until {rec.claim_expires_at:%H:%M} UTC" if rec.claim_expires_at else ""
    return f"{holder} is working on case {rec.external_id}{until}"


def _closed_message(rec: Recommendation) -> str:
    """Why a case can no longer be countersigned in the queue."""
    if rec.status == "exception":
        return f"case {rec.external_id} was routed to the exceptions queue"
    return f"case {rec.external_id} has already been decided"
