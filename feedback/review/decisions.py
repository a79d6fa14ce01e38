"""Decisions on cases: recording one (accept, override, escalate) and taking the last one back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload
from sqlalchemy.orm.exc import StaleDataError

from feedback import audit, metrics, permissions
from feedback.accounts.services import actor_of
from feedback.audit import Change
from feedback.db import utcnow
from feedback.decision_exceptions import services as decision_exceptions
from feedback.errors import (
    AlreadyDecided,
    ClaimedByOther,
    Conflict,
    DecisionFinal,
    NotFound,
    NotShown,
    PermissionDenied,
    Problems,
)
from feedback.impact import assignment as arms
from feedback.models import (
    Decision,
    DecisionException,
    Recommendation,
    User,
)
from feedback.overrides import guardrails, rollup
from feedback.permissions import Action
from feedback.review import claims
from feedback.review import queries as review_queries
from feedback.review.claims import CLAIM_MINUTES, claim_stamp, claimed_message, closed_message

# A decision on the review screen this soon after the case was opened is flagged `quick`: too
# soon to have read the recommendation and its explanation (docs/product.md).
QUICK_DECISION_SECONDS = 2.0


# A reviewer may take back their last decision for this long; after it the decision is final.
UNDO_SECONDS = 10


@dataclass
class NextCase:
    """The review screen's queue filter; record_decision claims the next case from it into `case`."""

    model_id: int | None = None
    site: str | None = None
    case: Recommendation | None = None


# Exceptions a decision itself opens (and an undo withdraws while nobody has started on them).
DECISION_EXCEPTION_KINDS = ("reviewer_escalation", "audit_sample")


def record_decision(
    session: Session,
    actor: User,
    *,
    recommendation_id: int,
    action: str,
    final_action: str | None = None,
    reason_code: str | None = None,
    note: str = "",
    channel: str = "ui",
    shown_claim: int | None = None,
    then_claim: NextCase | None = None,
) -> Decision:
    """Countersign a case: accept, override (with a reason code) or escalate (with a note).

    When the recommendation was not shown (shadow or paused version) the reviewer decided
    unaided: `final_action` is required and the action is derived from whether it agrees.

    `shown_claim` (the review screen passes it) is the `claim_stamp` of the claim under which the
    case was shown to this reviewer: the decision is refused (NotShown) unless they still hold
    that very claim, so a key press meant for one case never lands on another.

    `then_claim` (the review screen passes it) also claims the reviewer's next case, in the same
    transaction: one commit, and one hold of the audit chain's head, for both (`then_claim.case`).
    """
    permissions.require(actor, Action.REVIEW)
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
        raise AlreadyDecided(closed_message(rec))
    if rec.claimed_by_id not in (None, actor.id) and rec.claim_expires_at and rec.claim_expires_at > now:
        raise ClaimedByOther(claimed_message(rec, actor))
    if shown_claim is not None and (rec.claimed_by_id != actor.id or claim_stamp(rec) != shown_claim):
        raise NotShown(f"case {rec.external_id} is not the case you were shown; open it again to decide it")

    model = rec.model
    # The arm is recomputed here (it is deterministic) so API decisions obey the experiment too.
    assignment = arms.expose(session, rec, actor.id, now)
    ai_shown = arms.ai_shown_for(rec.model_version, assignment)
    note = (note or "").strip()
    reason_code = reason_code or None
    action, final_action = _checked_decision(rec, ai_shown, action, final_action or None, reason_code, note)

    opened_at = rec.claimed_at if rec.claimed_by_id == actor.id and rec.claimed_at else now
    quick = channel == "ui" and (now - opened_at).total_seconds() < QUICK_DECISION_SECONDS
    decision = Decision(
        recommendation=rec,
        model_id=rec.model_id,
        model_version_id=rec.model_version_id,
        reviewer_id=actor.id,
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
            session, rec, kind="reviewer_escalation", reason=note or model.reason_label(reason_code), raised_by=actor
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
    if then_claim is not None:
        then_claim.case, claimed = claims.claim_next_uncommitted(
            session, actor, model_id=then_claim.model_id, site=then_claim.site, after_id=rec.id
        )
        changes += claimed
    # Asked inside the decision's transaction: most decisions move no guardrail, and then need no second one.
    moved = {"accuracy": labelled, "override_rate": ai_shown and action == "override"}
    check = guardrails.due_after_decision(session, rec.model_version_id, **moved)
    audit.record(session, actor_of(actor), [decided, *changes])
    session.commit()
    metrics.decided(model.key, action, reason_code)
    if check:
        guardrails.check_after_change(session, [rec.model_version_id], **moved)
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


def retract_decision(
    session: Session, actor: User, *, recommendation_id: int, now: datetime | None = None
) -> Recommendation:
    """Undo one's last decision within UNDO_SECONDS: the case is open again and claimed by the same reviewer.

    Everything the decision did is taken back in the same transaction: the decision row, its counts
    in `decision_counts`, the exceptions it opened (refused once a handler has started on one), and
    the guardrail alerts raised since that no longer hold without it (a version one of them paused
    gets its stage back). The audit trail keeps the decision and records `decision.retracted`.
    """
    permissions.require(actor, Action.REVIEW)
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
    if decision.reviewer_id != actor.id:
        raise PermissionDenied(f"only the reviewer who decided case {rec.external_id} can undo it")
    final = f"your decision on case {rec.external_id} is final"
    if now - decision.decided_at > timedelta(seconds=UNDO_SECONDS):
        raise DecisionFinal(f"{final}: a decision can be undone for {UNDO_SECONDS} seconds")
    latest = session.scalar(select(func.max(Decision.id)).where(Decision.reviewer_id == actor.id))
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

    from feedback.overrides import guardrails

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
    rec.claimed_by_id, rec.claimed_at = actor.id, now
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
    audit.record(session, actor_of(actor), changes)
    session.commit()
    metrics.retracted(rec.model.key, action)
    guardrails.check_after_change(session, [version_id])
    reopened = review_queries.case_detail(session, recommendation_id)
    assert reopened is not None
    return reopened
