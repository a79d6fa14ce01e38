"""decision counts in shards, so concurrent decisions lock different rows

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 10:50:00

Rows counted so far become shard 0. A database upgraded from before 0004 has its decisions
counted once the upgrade reaches the head (feedback/migrate.py): counting here would use today's
ORM models on a schema that is not yet today's.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("decision_counts") as batch:
        batch.add_column(sa.Column("shard", sa.SmallInteger(), server_default="0", nullable=False))
        batch.drop_constraint("uq_decision_counts_model_version_id_day_dimension_key", type_="unique")
        batch.create_unique_constraint(
            "uq_decision_counts_model_version_id_day_dimension_key_shard",
            ["model_version_id", "day", "dimension", "key", "shard"],
        )


def downgrade() -> None:
    """Revert this revision (the shards of each cell are added together first)."""
    names = ["accepts", "overrides", "escalations", "with_outcome", "ai_right", "final_right"]
    names += ["outcome_overrides", "corrected", "overrode_right"]
    columns = ", ".join(names)
    sums = ", ".join(f"sum({c}) AS {c}" for c in names)
    op.execute(
        "CREATE TEMPORARY TABLE merged_counts AS SELECT model_id, model_version_id, day, dimension, key, "
        f"{sums} FROM decision_counts GROUP BY model_id, model_version_id, day, dimension, key"
    )
    op.execute("DELETE FROM decision_counts")
    with op.batch_alter_table("decision_counts") as batch:
        batch.drop_constraint("uq_decision_counts_model_version_id_day_dimension_key_shard", type_="unique")
        batch.drop_column("shard")
        batch.create_unique_constraint(
            "uq_decision_counts_model_version_id_day_dimension_key", ["model_version_id", "day", "dimension", "key"]
        )
    op.execute(
        f"INSERT INTO decision_counts (model_id, model_version_id, day, dimension, key, {columns}) "
        "SELECT * FROM merged_counts"
    )
    op.execute("DROP TABLE merged_counts")
