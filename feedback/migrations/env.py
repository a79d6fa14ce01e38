"""Alembic environment: the engine comes from the caller (see feedback.migrate)."""

from alembic import context

from feedback import models  # noqa: F401  (registers the tables)
from feedback.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # Batch migrations rebuild tables; SQLite only lets that happen with foreign keys off,
        # and the pragma must run outside a transaction, so it goes to the raw connection.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
    if sqlite:
        problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
        connection.commit()
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
        if problems:
            raise RuntimeError(f"migration left rows breaking foreign keys: {problems[:5]}")
