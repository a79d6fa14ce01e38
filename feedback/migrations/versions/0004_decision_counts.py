"""decision counts rollup

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 21:22:29.357158
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "decision_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("dimension", sa.String(length=80), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("accepts", sa.Integer(), nullable=False),
        sa.Column("overrides", sa.Integer(), nullable=False),
        sa.Column("escalations", sa.Integer(), nullable=False),
        sa.Column("with_outcome", sa.Integer(), nullable=False),
        sa.Column("ai_right", sa.Integer(), nullable=False),
        sa.Column("final_right", sa.Integer(), nullable=False),
        sa.Column("outcome_overrides", sa.Integer(), nullable=False),
        sa.Column("corrected", sa.Integer(), nullable=False),
        sa.Column("overrode_right", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_decision_counts_model_id_models")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_decision_counts_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_counts")),
        sa.UniqueConstraint(
            "model_version_id",
            "day",
            "dimension",
            "key",
            name=op.f("uq_decision_counts_model_version_id_day_dimension_key"),
        ),
    )
    with op.batch_alter_table("decision_counts", schema=None) as batch_op:
        batch_op.create_index("ix_decision_counts_lookup", ["model_id", "dimension", "day"], unique=False)

    # The decisions already stored are counted by 0009, once the table has its final shape
    # (the counting code writes the columns of the newest revision).


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("decision_counts", schema=None) as batch_op:
        batch_op.drop_index("ix_decision_counts_lookup")

    op.drop_table("decision_counts")
