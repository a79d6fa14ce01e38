"""login throttles by address: an index for the limit on one address guessing across many accounts

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-29 18:40:00
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_login_throttles_address", "login_throttles", ["address"])


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_login_throttles_address", table_name="login_throttles")
