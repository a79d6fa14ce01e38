"""Bulk inserts (COPY on PostgreSQL) store exactly what an ORM insert stores, and fail the same way."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.exc import CompileError, IntegrityError, OperationalError

from feedback import bulk
from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.models import Recommendation
from tests.factories import make_model

DUE = utcnow() + timedelta(hours=4)


def _row(session, external_id: str, **overrides) -> dict:
    version = catalog.get_model(session, "claims").versions[0]
    return {
        "model_id": version.model_id,
        "model_version_id": version.id,
        "external_id": external_id,
        "subject": "Claim — «quoted» \t tab\nnewline \\ backslash",
        "site": "Leeds",
        "segment": {"band": "1k_10k", "nested": {"list": [1, 2.5, None, True]}},
        "recommended_action": "pay",
        "confidence": 0.8125,
        "explanation": {"summary": "<b>markup</b> stays text", "factors": []},
        "features": None,
        "error": None,
        "payload_hash": "f" * 64,
        "due_at": DUE,
        **overrides,
    }


def _stored(session, external_id: str) -> dict:
    columns = [c for c in Recommendation.__table__.columns if c.key not in ("id", "created_at")]
    return dict(session.execute(select(*columns).where(Recommendation.external_id == external_id)).one()._mapping)


def test_bulk_rows_equal_orm_inserted_rows(session):
    make_model(session)
    reference = _row(session, "ORM-1")
    session.execute(insert(Recommendation), [reference])
    before = utcnow()
    ids = bulk.insert_returning_ids(session, Recommendation, [_row(session, f"BULK-{n}") for n in range(3)])
    session.commit()

    assert ids == sorted(ids) and len(set(ids)) == 3
    stored = {r.external_id: r for r in session.scalars(select(Recommendation).where(Recommendation.id.in_(ids)))}
    assert [stored[f"BULK-{n}"].id for n in range(3)] == ids
    expected = _stored(session, "ORM-1") | {"external_id": "BULK-0"}
    assert _stored(session, "BULK-0") == expected
    # Column defaults apply as in an INSERT: flags, status, row version and created_at.
    assert stored["BULK-0"].flags == [] and stored["BULK-0"].status == "open" and stored["BULK-0"].row_version == 1
    assert before <= stored["BULK-0"].created_at <= utcnow()
    # The sequence moves on: the next ORM insert does not collide with the bulk ids.
    session.execute(insert(Recommendation), [_row(session, "ORM-2")])
    session.commit()
    assert session.scalar(select(Recommendation.id).where(Recommendation.external_id == "ORM-2")) > max(ids)


def test_bulk_duplicate_raises_integrity_error_and_stores_nothing(session):
    make_model(session)
    bulk.insert_rows(session, Recommendation, [_row(session, "DUP")])
    session.commit()
    with pytest.raises(IntegrityError):
        bulk.insert_rows(session, Recommendation, [_row(session, "NEW"), _row(session, "DUP")])
    session.rollback()
    assert session.scalars(select(Recommendation.external_id)).all() == ["DUP"]


def test_unknown_column_is_refused(session):
    make_model(session)
    with pytest.raises(CompileError, match="colour"):
        bulk.insert_rows(session, Recommendation, [_row(session, "X", colour="red")])
    session.rollback()


def test_among_matches_like_in(session):
    make_model(session)
    bulk.insert_rows(session, Recommendation, [_row(session, f"A-{n}") for n in range(5)])
    session.commit()
    wanted = ["A-1", "A-3", "missing", "A-4"]
    found = session.scalars(
        select(Recommendation.external_id).where(bulk.among(session, Recommendation.external_id, wanted))
    ).all()
    assert sorted(found) == ["A-1", "A-3", "A-4"]


def test_lost_connection_during_copy_is_retryable(session, database_url):
    """A COPY on a dropped connection raises OperationalError, and the session recovers on rollback."""
    if not database_url.startswith("postgresql"):
        pytest.skip("COPY is PostgreSQL's path")
    make_model(session)
    row = _row(session, "LOST")
    backend_pid = session.scalar(text("SELECT pg_backend_pid()"))
    killer = create_engine(database_url)
    with killer.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend_pid})
    killer.dispose()
    with pytest.raises(OperationalError) as raised:
        bulk.insert_rows(session, Recommendation, [row])
    assert raised.value.connection_invalidated
    session.rollback()  # must not raise on the dead connection
    assert session.scalar(select(func.count()).select_from(Recommendation)) == 0
