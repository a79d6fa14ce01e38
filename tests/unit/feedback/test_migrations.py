"""The migrations are the only source of the schema, on both backends."""

from __future__ import annotations

import re
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.orm import Session

from feedback import migrate
from feedback.db import Base
from feedback.review import decisions
from tests.factories import make_case, make_model, make_user


def test_migrated_schema_matches_the_models(database_url):
    engine = create_engine(database_url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_downgrade_and_upgrade_round_trip(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'round.sqlite'}")
    migrate.upgrade(engine)
    assert "decisions" in inspect(engine).get_table_names()
    migrate.downgrade(engine, "base")
    assert inspect(engine).get_table_names() == ["alembic_version"]
    migrate.upgrade(engine)
    assert {"recommendations", "audit_events", "audit_head"} <= set(inspect(engine).get_table_names())
    engine.dispose()


def test_downgrading_the_count_shards_adds_them_together(scratch_url):
    engine = create_engine(scratch_url)
    migrate.upgrade(engine)
    with Session(engine) as session:
        make_model(session)
    cells = "INSERT INTO decision_counts (model_id, model_version_id, day, dimension, key, shard, accepts, overrides, "
    cells += "escalations, with_outcome, ai_right, final_right, outcome_overrides, corrected, overrode_right) "
    cells += "VALUES (1, 1, '2026-01-01', 'site', :key, :shard, :a, 1, 0, 2, 1, 0, 0, 0, 0)"
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM decision_counts"))
        for key, shard, accepts in (("Leeds", 0, 3), ("Leeds", 5, 4), ("York", 2, 1)):
            conn.execute(text(cells), {"key": key, "shard": shard, "a": accepts})
    migrate.downgrade(engine, "0008")
    query = "SELECT key, accepts, overrides, with_outcome, ai_right FROM decision_counts ORDER BY key"
    with engine.connect() as conn:
        assert conn.execute(text(query)).all() == [("Leeds", 7, 2, 4, 2), ("York", 1, 1, 2, 1)]
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT DISTINCT shard FROM decision_counts")).scalars().all() == [0]
    engine.dispose()


def test_no_migration_imports_application_code():
    """Each migration has its own table definitions: one that used today's code would break old upgrades."""
    versions = Path(migrate.MIGRATIONS) / "versions"
    offenders = [
        path.name
        for path in versions.glob("*.py")
        if re.search(r"^\s*(from|import) (feedback|webapp|analytics)\b", path.read_text(), re.MULTILINE)
    ]
    assert offenders == []
    assert len(list(versions.glob("*.py"))) >= 15


def test_an_upgrade_counts_decisions_the_rollup_never_counted(scratch_url):
    engine = create_engine(scratch_url)
    migrate.upgrade(engine)
    with Session(engine, expire_on_commit=False) as session:
        make_model(session)
        reviewer = make_user(session)
        for n, action in enumerate(("accept", "accept", "override", "accept", "escalate", "override"), 1):
            rec = make_case(session, n, site=("Leeds", "Bristol")[n % 2])
            extra = {"final_action": "deny", "reason_code": "missing_context"} if action == "override" else {}
            note = "?" if action == "escalate" else ""
            decisions.record_decision(session, reviewer, recommendation_id=rec.id, action=action, note=note, **extra)
    counted = "SELECT dimension, key, sum(accepts), sum(overrides), sum(escalations) FROM decision_counts "
    counted += "GROUP BY dimension, key ORDER BY dimension, key"
    with engine.begin() as conn:
        before = conn.execute(text(counted)).all()
        assert ("model_version", "v1", 3, 2, 1) in before
        conn.execute(text("DELETE FROM decision_counts"))  # as in a database from before 0004
    migrate.downgrade(engine, "0008")
    migrate.upgrade(engine)
    with engine.connect() as conn:
        assert conn.execute(text(counted)).all() == before
    engine.dispose()
