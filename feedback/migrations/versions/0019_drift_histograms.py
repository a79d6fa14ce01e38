"""drift histograms: counts per (version, day, feature, bin) kept at ingest; the drift guardrail kind

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-29 15:00:00

The recommendations already stored are counted once the upgrade reaches the head
(feedback/migrate.py), with the code of the head.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

OLD_KINDS = ("override_rate_above", "accuracy_below", "control_chart")
NEW_KINDS = (*OLD_KINDS, "drift")


def _kinds(kinds: tuple[str, ...]) -> str:
    """The CHECK text for these guardrail kinds."""
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "drift_counts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.String(length=10), nullable=False),
        sa.Column("feature", sa.String(length=120), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("shard", sa.SmallInteger(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_drift_counts_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drift_counts")),
        sa.UniqueConstraint(
            "model_version_id",
            "day",
            "feature",
            "kind",
            "key",
            "shard",
            name=op.f("uq_drift_counts_model_version_id_day_feature_kind_key_shard"),
        ),
    )
    with op.batch_alter_table("guardrails") as batch:
        batch.drop_constraint(op.f("ck_guardrails_kind"), type_="check")
        batch.create_check_constraint("kind", _kinds(NEW_KINDS))


def downgrade() -> None:
    """Revert this revision (drift guardrails and their alerts go with it)."""
    op.execute("DELETE FROM alerts WHERE guardrail_id IN (SELECT id FROM guardrails WHERE kind = 'drift')")
    op.execute("DELETE FROM guardrails WHERE kind = 'drift'")
    with op.batch_alter_table("guardrails") as batch:
        batch.drop_constraint(op.f("ck_guardrails_kind"), type_="check")
        batch.create_check_constraint("kind", _kinds(OLD_KINDS))
    op.drop_table("drift_counts")
