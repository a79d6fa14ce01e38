"""Backups restore to exactly the state they were taken in, with an intact audit chain."""

from __future__ import annotations

import sqlite3

from sqlalchemy import func, select

from feedback.models import AuditEvent, Decision, Recommendation
from feedback.review import decisions
from tests.factories import make_case, make_model, make_user


def counts(session) -> tuple[int, int, int]:
    session.rollback()
    return tuple(session.scalar(select(func.count()).select_from(m)) for m in (Recommendation, Decision, AuditEvent))


def test_backup_then_restore_brings_back_that_state_and_verifies_the_chain(app, session, tmp_path):
    make_model(session)
    reviewer = make_user(session)
    for n in range(1, 6):
        case = make_case(session, n)
        decisions.record_decision(session, reviewer, recommendation_id=case.id, action="accept")
    at_backup = counts(session)
    runner = app.test_cli_runner()
    target = tmp_path / "countersign.backup"
    made = runner.invoke(args=["db", "backup", str(target)])
    assert made.exit_code == 0, made.output
    assert target.stat().st_size > 0 and "pw" not in made.output

    later = make_case(session, 99)  # work done after the backup is lost by a restore, nothing else
    decisions.record_decision(session, reviewer, recommendation_id=later.id, action="accept")
    assert counts(session) != at_backup
    session.close()

    restored = runner.invoke(args=["db", "restore", str(target), "--yes"])
    assert restored.exit_code == 0, restored.output
    assert f"audit chain intact: {at_backup[2]} events verified" in restored.output
    assert counts(session) == at_backup
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and f"{at_backup[2]} events verified" in verified.output
    # The restored database takes new work where the backup left off.
    decisions.record_decision(session, reviewer, recommendation_id=make_case(session, 100).id, action="accept")
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def test_a_tampered_sqlite_backup_is_refused_and_nothing_is_replaced(app, session, tmp_path, database_url):
    if not database_url.startswith("sqlite"):
        return  # PostgreSQL dumps are checked after the restore (the first test)
    make_model(session)
    make_case(session, 1)
    runner = app.test_cli_runner()
    target = tmp_path / "tampered.sqlite"
    assert runner.invoke(args=["db", "backup", str(target)]).exit_code == 0
    with sqlite3.connect(target) as copy:
        copy.execute("UPDATE audit_events SET actor = 'mallory' WHERE seq = 1")
    before = counts(session)
    make_case(session, 2)
    session.close()
    refused = runner.invoke(args=["db", "restore", str(target), "--yes"])
    assert refused.exit_code == 1
    assert "audit chain" in refused.output and "event #1" in refused.output
    assert counts(session)[0] == before[0] + 1  # the live database still has case 2
