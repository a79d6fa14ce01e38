"""A decision costs the same on day 1,000 as on day 1 (issue 19), and the auto-pause bound holds.

A decision measures only the guardrails it can have moved (docs/performance.md): the override
rate over the last n decisions rises only when an override enters the window, so accepts skip
it once the window is full. The bound is zero decisions: every breach alerts (and pauses) at
the very decision that makes it, including a breach that still holds after its alert was
acknowledged.
"""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from feedback.accounts import services as accounts
from feedback.models import Alert, AuditEvent, Guardrail, ModelVersion
from feedback.overrides import guardrails, measures
from feedback.review import decisions
from tests.factories import TEST_ACTOR, make_case, make_model, make_owner, make_user
from tests.helpers import decide_case


@pytest.fixture
def version(session):
    """The claims model's production version."""
    make_model(session)
    return session.scalar(select(ModelVersion))


def override_guardrail(session, version, window=10, threshold=0.3):
    """An auto-pausing override-rate guardrail on the version."""
    return guardrails.add_guardrail(
        session,
        TEST_ACTOR,
        version_id=version.id,
        kind="override_rate_above",
        window_size=window,
        threshold=threshold,
        auto_pause=True,
    )


def alerts(session):
    return session.scalar(select(func.count()).select_from(Alert))


def test_an_accept_skips_a_full_override_window_and_the_next_override_that_breaches_pauses_at_once(session, version):
    guardrail = override_guardrail(session, version)
    reviewer = make_user(session)
    for n in range(10):  # 3 of 10: at the limit, not above it
        decide_case(session, reviewer, n, "override" if n < 3 else "accept")
    session.refresh(guardrail)
    assert guardrail.last_value == pytest.approx(0.3) and alerts(session) == 0
    checked = guardrail.last_checked_at
    # Accepts can only keep or lower the rate: they do not measure it.
    for n in range(10, 13):
        decide_case(session, reviewer, n, "accept")
    session.refresh(guardrail)
    assert guardrail.last_checked_at == checked
    # The three overrides have left the window. Each new override is measured, and the one that
    # takes the rate above 30% (the fourth) pauses the version at once.
    for n in range(13, 20):
        decide_case(session, reviewer, n, "override")
        session.refresh(guardrail)
        rate = measures.override_rate_of_last(session, version.id, 10)
        assert guardrail.last_value == pytest.approx(rate)  # measured at every override
        if rate is not None and rate > 0.3:
            break
    assert alerts(session) == 1
    session.refresh(version)
    assert version.stage == "paused"


def test_a_breach_that_still_holds_alerts_again_at_the_very_next_decision_after_acknowledgement(session, version):
    guardrail = override_guardrail(session, version)
    reviewer = make_user(session)
    for n in range(10):
        decide_case(session, reviewer, n, "override" if n < 5 else "accept")  # 50%: alert, pause
    alert = session.scalar(select(Alert))
    assert alert is not None and alert.paused_from == "production"
    owner = make_owner(session)
    guardrails.resume_version(session, accounts.actor_of(owner), version_id=version.id)
    session.refresh(guardrail)
    assert guardrail.last_value is None  # to be measured at the next decision, whatever it is
    decide_case(session, reviewer, 10, "accept")  # 4 of 10 overrides still: above 30%
    assert alerts(session) == 2
    session.refresh(version)
    assert version.stage == "paused"


def test_a_decision_that_moves_no_guardrail_is_one_transaction(session, version):
    override_guardrail(session, version)
    reviewer = make_user(session)
    for n in range(10):
        decide_case(session, reviewer, n, "accept")
    commits = []

    def note(committed):
        commits.append(committed)

    event.listen(session, "after_commit", note)
    try:
        rec = make_case(session, 100)
        before = len(commits)
        decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept")
        assert len(commits) - before == 1
        rec = make_case(session, 101)
        before = len(commits)
        decisions.record_decision(
            session,
            reviewer,
            recommendation_id=rec.id,
            action="override",
            final_action="deny",
            reason_code="missing_context",
        )
        assert len(commits) - before == 2  # the override is measured after the decision's commit
    finally:
        event.remove(session, "after_commit", note)
    assert session.scalar(select(Guardrail.last_value)) == pytest.approx(0.1)


def test_the_statements_of_a_decision_do_not_grow_with_history(session, version):
    """The same statements, one by one, at 20 and at 220 past decisions (none reads the history whole)."""
    override_guardrail(session, version, window=10)
    guardrails.add_guardrail(
        session,
        TEST_ACTOR,
        version_id=version.id,
        kind="accuracy_below",
        window_size=10,
        threshold=0.5,
        auto_pause=False,
    )
    reviewer = make_user(session)

    def statements_of_one_decision(n):
        rec = make_case(session, n)
        seen = []

        def note(_conn, _cursor, statement, *_):
            seen.append(statement)

        engine = session.get_bind()
        event.listen(engine, "before_cursor_execute", note)
        try:
            decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept")
        finally:
            event.remove(engine, "before_cursor_execute", note)
        return seen

    for n in range(20):
        decide_case(session, reviewer, n, "accept")
    early = statements_of_one_decision(1000)
    for n in range(20, 220):
        decide_case(session, reviewer, n, "accept")
    late = statements_of_one_decision(1001)
    assert late == early
    assert len(early) <= 12


def test_the_review_screen_decides_and_claims_the_next_case_in_one_commit(session, version):
    reviewer = make_user(session)
    first, second = make_case(session, 1), make_case(session, 2)
    commits = []

    def note(committed):
        commits.append(committed)

    event.listen(session, "after_commit", note)
    try:
        nxt = decisions.NextCase()
        decisions.record_decision(session, reviewer, recommendation_id=first.id, action="accept", then_claim=nxt)
    finally:
        event.remove(session, "after_commit", note)
    assert len(commits) == 1
    assert nxt.case is not None and nxt.case.id == second.id and nxt.case.claimed_by_id == reviewer.id
    events = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq.desc()).limit(2)).all()
    assert events == ["case.claimed", "decision.accept"]
