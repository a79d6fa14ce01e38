"""Alembic environment: the engine comes from the caller (see feedback.migrate)."""

from alembic import context

from feedback import models  # noqa: F401  (registers the tables)
from feedback.db import Base

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
