"""model labels: the model's own words for its actions and segment attributes (and their values)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 09:00:00

Models registered before this revision have no labels: pages show their codes humanised
("raise_alert" reads "Raise alert") until labels are given.
"""

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("action_labels", _json(), server_default=sa.text("'{}'"), nullable=False))
        batch.add_column(sa.Column("segment_labels", _json(), server_default=sa.text("'{}'"), nullable=False))


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("models") as batch:
        batch.drop_column("segment_labels")
        batch.drop_column("action_labels")
