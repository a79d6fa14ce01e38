"""Decision, claim and user rules, tested through the services without HTTP."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from feedback import permissions
from feedback.accounts import login, tokens
from feedback.accounts import services as accounts
from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.errors import (
    AlreadyDecided,
    ClaimedByOther,
    Conflict,
    NotAllowedByConfiguration,
    PermissionDenied,
    ValidationFailed,
)
from feedback.models import AuditEvent, Decision, ModelVersion
from feedback.review import claims, decisions
from tests.factories import TEST_ACTOR, make_case, make_model, make_user


@pytest.fixture
def world(session):
    """A model, a case and two reviewers."""
    make_model(session)
    return {"rec": make_case(session), "ann": make_user(session, name="Ann"), "bob": make_user(session, name="Bob")}


def test_accept_keeps_recommended_action_and_uses_claim_time(session, world):
    rec, ann = world["rec"], world["ann"]
    claims.claim_case(session, ann, recommendation_id=rec.id)
    claimed_at = rec.claimed_at
    decision = decisions.record_decision(session, ann, recommendation_id=rec.id, action="accept")
    assert decision.final_action == "pay" and decision.ai_shown is True
    assert decision.opened_at == claimed_at <= decision.decided_at
    assert rec.status == "decided" and rec.claimed_by_id is None


def test_override_needs_reason_and_a_different_action(session, world):
    rec, ann = world["rec"], world["ann"]
    with pytest.raises(NotAllowedByConfiguration) as err:  # the case's recommended action and shown AI: 409
        decisions.record_decision(session, ann, recommendation_id=rec.id, action="override", final_action="pay")
    assert set(err.value.fields) == {"final_action", "reason_code"}
    decision = decisions.record_decision(
        session,
        ann,
        recommendation_id=rec.id,
        action="override",
        final_action="deny",
        reason_code="missing_context",
        note="<b>see</b>",
    )
    assert (decision.action, decision.final_action, decision.reason_code) == ("override", "deny", "missing_context")
    assert decision.note == "<b>see</b>"


def test_escalation_needs_a_reason_and_leaves_final_action_open(session, world):
    rec, ann = world["rec"], world["ann"]
    with pytest.raises(ValidationFailed) as err:
        decisions.record_decision(session, ann, recommendation_id=rec.id, action="escalate")
    assert "note" in err.value.fields
    decision = decisions.record_decision(session, ann, recommendation_id=rec.id, action="escalate", note="odd")
    assert decision.final_action is None and rec.status == "escalated"


def test_second_decision_is_refused(session, world):
    rec, ann, bob = world["rec"], world["ann"], world["bob"]
    decisions.record_decision(session, ann, recommendation_id=rec.id, action="accept")
    with pytest.raises(AlreadyDecided):
        decisions.record_decision(session, bob, recommendation_id=rec.id, action="accept")
    assert session.scalar(select(func.count()).select_from(Decision)) == 1


def test_claims_block_others_until_they_expire(session, world):
    rec, ann, bob = world["rec"], world["ann"], world["bob"]
    claims.claim_case(session, ann, recommendation_id=rec.id)
    with pytest.raises(ClaimedByOther) as err:
        claims.claim_case(session, bob, recommendation_id=rec.id)
    # Bob, a fellow reviewer, is told who by pseudonym only.
    assert f"{permissions.pseudonym(ann.id)} is working on case EXT-1" in err.value.message
    assert "Ann" not in err.value.message
    with pytest.raises(ClaimedByOther):
        decisions.record_decision(session, bob, recommendation_id=rec.id, action="accept")
    later = utcnow() + timedelta(minutes=claims.CLAIM_MINUTES + 1)
    taken = claims.claim_case(session, bob, recommendation_id=rec.id, now=later)
    assert taken.claimed_by_id == bob.id


def test_renewing_own_claim_keeps_opened_time(session, world):
    rec, ann = world["rec"], world["ann"]
    first = claims.claim_case(session, ann, recommendation_id=rec.id).claimed_at
    renewed = claims.claim_case(session, ann, recommendation_id=rec.id, now=utcnow() + timedelta(minutes=2))
    assert renewed.claimed_at == first
    claimed = session.scalar(select(func.count()).where(AuditEvent.action == "case.claimed"))
    assert claimed == 1


def test_claim_next_skips_cases_held_by_others_and_orders_by_due(session, world):
    ann, bob = world["ann"], world["bob"]
    soon = make_case(session, 2, due_at=(utcnow() + timedelta(minutes=5)).isoformat())
    assert claims.claim_next(session, ann).id == soon.id
    assert claims.claim_next(session, bob).id == world["rec"].id
    assert claims.claim_next(session, make_user(session)) is None


def test_hidden_recommendation_means_unaided_decision(session, world):
    rec, ann = world["rec"], world["ann"]
    version = session.get(ModelVersion, rec.model_version_id)
    catalog.set_version_stage(session, TEST_ACTOR, version_id=version.id, stage="paused")
    with pytest.raises(NotAllowedByConfiguration) as err:
        decisions.record_decision(session, ann, recommendation_id=rec.id, action="accept")
    assert "final_action" in err.value.fields
    decision = decisions.record_decision(session, ann, recommendation_id=rec.id, action="accept", final_action="deny")
    assert decision.ai_shown is False and decision.action == "override" and decision.reason_code is None


def test_roles_are_enforced_in_services(session, world):
    owner = make_user(session, "model_owner")
    with pytest.raises(PermissionDenied):
        decisions.record_decision(session, owner, recommendation_id=world["rec"].id, action="accept")
    with pytest.raises(PermissionDenied):
        claims.claim_case(session, owner, recommendation_id=world["rec"].id)


def test_users_and_tokens(session):
    user = make_user(session, "analyst", email="Ana@Example.test")
    assert user.email == "ana@example.test" and user.password_hash.startswith("$argon2id$")
    with pytest.raises(Conflict):
        make_user(session, "analyst", email="ana@example.test")
    with pytest.raises(ValidationFailed) as err:
        accounts.create_user(session, TEST_ACTOR, email="nope", role="boss", password="short")
    assert set(err.value.fields) == {"email", "role", "password"}
    token = tokens.create_token(session, TEST_ACTOR, email=user.email)
    assert tokens.user_for_token(session, token).id == user.id
    from feedback.models import ApiToken

    stored = session.scalar(select(ApiToken))
    assert token not in (stored.token_hash, stored.prefix + "x") and len(stored.token_hash) == 64
    assert login.authenticate(session, email="ANA@example.test", password="correct horse battery").id == user.id
    assert login.authenticate(session, email=user.email, password="wrong password") is None


def test_queue_counts_match_a_count_of_the_raw_rows_under_every_filter(session, world):
    from feedback.models import Model, Recommendation
    from feedback.review import queries as review_queries

    make_model(session, key="loans", actions=("approve", "decline"))
    now = utcnow()
    for n in range(30):
        due = {"due_at": (now + timedelta(hours=n % 5 - 2)).isoformat()} if n % 3 else {}
        site = ("Leeds", "York", "Hull")[n % 3]
        model = {} if n % 2 else {"model": "loans", "recommended_action": "approve"}
        make_case(session, 100 + n, site=site, **model, **due)
    reviewer = world["ann"]
    for _ in range(4):
        claims.claim_next(session, reviewer)
    first = session.scalar(select(Recommendation.id).order_by(Recommendation.id))
    decisions.record_decision(session, reviewer, recommendation_id=first, action="accept")

    rows = session.execute(
        select(
            Recommendation.model_id, Recommendation.site, Recommendation.due_at, Recommendation.claim_expires_at
        ).where(Recommendation.status == "open")
    ).all()
    names = dict(session.execute(select(Model.id, Model.name)).all())
    loans_id = next(i for i, name in names.items() if name == "Loans")
    assert any(r.claim_expires_at for r in rows) and any(r.due_at and r.due_at < now for r in rows)
    for flt in (
        review_queries.QueueFilter(),
        review_queries.QueueFilter(model_id=loans_id),
        review_queries.QueueFilter(site="York"),
        review_queries.QueueFilter(model_id=loans_id, site="Leeds"),
        review_queries.QueueFilter(site="Nowhere"),
    ):
        counts = review_queries.queue_counts(session, flt, now)
        in_model = [r for r in rows if not flt.model_id or r.model_id == flt.model_id]
        in_site = [r for r in rows if not flt.site or r.site == flt.site]
        both = [r for r in in_model if r in in_site]
        assert counts.total == len(both)
        assert counts.overdue == sum(1 for r in both if r.due_at and r.due_at < now)
        assert counts.claimed == sum(1 for r in both if r.claim_expires_at and r.claim_expires_at > now)
        expected_models = sorted({(r.model_id, names[r.model_id]) for r in in_site}, key=lambda m: m[1])
        assert counts.by_model == [(i, name, sum(1 for r in in_site if r.model_id == i)) for i, name in expected_models]
        sites = sorted({r.site for r in in_model})
        assert counts.by_site == [(site, sum(1 for r in in_model if r.site == site)) for site in sites]
