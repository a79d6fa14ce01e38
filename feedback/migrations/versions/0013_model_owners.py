"""model owners: who may change each model

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 09:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "model_owners",
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_model_owners_model_id_models"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_model_owners_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("model_id", "user_id", name=op.f("pk_model_owners")),
    )
    op.create_index(op.f("ix_model_owners_user_id"), "model_owners", ["user_id"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index(op.f("ix_model_owners_user_id"), table_name="model_owners")
    op.drop_table("model_owners")
