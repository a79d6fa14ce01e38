"""Run the Alembic migrations programmatically (used by `countersign db upgrade` and tests)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(engine: Engine) -> Config:
    """An Alembic config bound to this engine (no alembic.ini needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema up to `revision`; at the head, count decisions the rollup has never counted."""
    command.upgrade(alembic_config(engine), revision)
    if revision == "head":
        count_uncounted_decisions(engine)


def count_uncounted_decisions(engine: Engine) -> None:
    """Fill the rollup of a database that has decisions but no counts (one upgraded from before 0004).

    This runs at the head, never inside a migration: the rollup is written with today's ORM models,
    which match only today's schema.
    """
    from feedback.overrides import rollup

    with Session(engine) as session:
        counted = session.execute(text("SELECT EXISTS (SELECT 1 FROM decision_counts)")).scalar()
        decided = session.execute(text("SELECT EXISTS (SELECT 1 FROM decisions)")).scalar()
        if decided and not counted:
            rollup.rebuild(session)
            session.commit()


def downgrade(engine: Engine, revision: str) -> None:
    """Take the schema back to `revision`."""
    command.downgrade(alembic_config(engine), revision)
