"""revocable sessions (a per-user session generation) and per (account, address) login throttles

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 09:00:00

Sign-in throttling used to count `login.failed` audit events per account and per address, which
let anyone lock an account (or everyone behind one address) out. It now lives in its own table,
one row per (account, address) pair. Sessions issued before this revision end: their cookies
carry no generation, so everyone signs in once more.
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("session_generation", sa.Integer(), server_default=sa.text("0"), nullable=False))
    op.create_table(
        "login_throttles",
        sa.Column("account", sa.String(length=254), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("succeeded_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("account", "address", name=op.f("pk_login_throttles")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("login_throttles")
    with op.batch_alter_table("users") as batch:
        batch.drop_column("session_generation")
