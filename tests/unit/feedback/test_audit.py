"""The audit chain detects edited, deleted and truncated history."""

from __future__ import annotations

from sqlalchemy import delete, select, text, update

from feedback import audit
from feedback.models import AuditEvent, AuditHead
from tests.factories import make_case, make_model, make_user


def _history(session) -> None:
    """A few events of different kinds."""
    make_model(session)
    make_user(session)
    make_case(session, 1)
    make_case(session, 2)


def test_intact_chain_verifies(session):
    _history(session)
    report = audit.verify_chain(session)
    assert report.ok, report.problems
    assert report.checked == session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    actions = session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)).all()
    assert actions[:2] == ["model.registered", "model_version.registered"]
    assert actions.count("recommendation.ingested") == 2


def test_edited_row_is_detected(session):
    _history(session)
    session.execute(text('UPDATE audit_events SET details = \'{"external_id":"FORGED"}\' WHERE seq = 3'))
    session.commit()
    report = audit.verify_chain(session)
    assert not report.ok
    assert any("#3" in p and "altered" in p for p in report.problems)


def test_deleted_row_is_detected(session):
    _history(session)
    session.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    session.commit()
    report = audit.verify_chain(session)
    assert any("#2 is missing" in p for p in report.problems)


def test_truncated_tail_is_detected(session):
    _history(session)
    last = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    session.execute(delete(AuditEvent).where(AuditEvent.seq == last))
    session.commit()
    report = audit.verify_chain(session)
    assert not report.ok and "chain ends" in report.problems[0]


def test_rehashing_an_edit_still_breaks_the_next_link(session):
    _history(session)
    event = session.scalar(select(AuditEvent).where(AuditEvent.seq == 2))
    forged = {**event.__dict__, "actor": "mallory"}
    new_hash = audit.event_hash(event.prev_hash, forged)
    session.execute(update(AuditEvent).where(AuditEvent.seq == 2).values(actor="mallory", hash=new_hash))
    session.commit()
    report = audit.verify_chain(session)
    assert any("#3 does not link" in p for p in report.problems)


def test_small_and_large_appends_store_the_same_chain(session):
    """A few events are appended by the database function, many by COPY (PostgreSQL); both link and verify alike."""
    actor = audit.Actor(7, "someone@example.test")
    sizes = [1, audit.FEW_EVENTS, audit.FEW_EVENTS + 1, 3, 250]
    for n, size in enumerate(sizes):
        changes = [
            audit.Change("thing.done", "thing", f"{n}-{i}", {"i": i, "text": "<b>'x'</b>\n"}) for i in range(size)
        ]
        audit.record(session, actor, changes)
        session.commit()
    rows = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()
    assert [r.seq for r in rows] == list(range(1, sum(sizes) + 1))
    assert {r.actor_id for r in rows} == {7} and rows[0].details == '{"i":0,"text":"<b>\'x\'</b>\\n"}'
    report = audit.verify_chain(session)
    assert report.ok and report.checked == sum(sizes), report.problems
    head = session.get(AuditHead, 1)
    assert (head.seq, head.last_hash) == (rows[-1].seq, rows[-1].hash)
    # The text the function hashes is the text event_hash hashes.
    last = rows[-1].__dict__
    assert audit.hash_prefix(last) + f"{last['seq']}}}" == audit.canonical_json(audit._hashed(last))
