"""quick decisions: countersigned on the review screen too soon after the case was opened

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02 09:00:00

Decisions stored before this revision are not flagged: their time to decide stays readable from
opened_at and decided_at.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("quick", sa.Boolean(), server_default=sa.text("false"), nullable=False))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("quick")
