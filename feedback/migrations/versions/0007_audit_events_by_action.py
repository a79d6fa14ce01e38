"""audit events by action and time (login rate limiting)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-23 02:40:00
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_index("ix_audit_events_action_time", "audit_events", ["action", "occurred_at"], unique=False)


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_audit_events_action_time", table_name="audit_events")
