"""The migrations are the only source of the schema, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from feedback import migrate
from feedback.db import Base


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
