"""export bytes in the database, so any host can serve a download

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 10:05:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "export_chunks",
        sa.Column("job_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["job_id"], ["export_jobs.id"], name=op.f("fk_export_chunks_job_id_export_jobs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("job_id", "seq", name=op.f("pk_export_chunks")),
    )
    # Files written before this revision stay on the host that wrote them; their jobs end as failed.
    op.execute(
        "UPDATE export_jobs SET status = 'failed', message = 'written before exports moved into the database: "
        "export again' WHERE status = 'done'"
    )
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("bytes_total", sa.BigInteger(), nullable=True))
        batch.drop_column("path")


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("export_jobs") as batch:
        batch.add_column(sa.Column("path", sa.String(length=500), nullable=True))
        batch.drop_column("bytes_total")
    op.drop_table("export_chunks")
