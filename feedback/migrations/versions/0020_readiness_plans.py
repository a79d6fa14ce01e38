"""readiness plans: go/kill criteria per model version, and the readiness guardrail kind that pauses on kill

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-29 15:00:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

OLD_KINDS = ("override_rate_above", "accuracy_below", "control_chart", "drift")  # as 0019 left them
NEW_KINDS = (*OLD_KINDS, "readiness")


def _kinds(kinds: tuple[str, ...]) -> str:
    return f"kind IN ({', '.join(repr(k) for k in kinds)})"


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "readiness_plans",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("plan_version", sa.Integer(), nullable=False),
        sa.Column(
            "criteria", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"), nullable=False
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_readiness_plans_created_by_id_users")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_readiness_plans_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_readiness_plans")),
        sa.UniqueConstraint(
            "model_version_id", "plan_version", name=op.f("uq_readiness_plans_model_version_id_plan_version")
        ),
    )
    with op.batch_alter_table("readiness_plans") as batch:
        batch.create_index(batch.f("ix_readiness_plans_model_version_id"), ["model_version_id"], unique=False)
    with op.batch_alter_table("guardrails") as batch:
        batch.drop_constraint(op.f("ck_guardrails_kind"), type_="check")
        batch.create_check_constraint("kind", _kinds(NEW_KINDS))


def downgrade() -> None:
    """Revert this revision."""
    op.execute("DELETE FROM alerts WHERE guardrail_id IN (SELECT id FROM guardrails WHERE kind = 'readiness')")
    op.execute("DELETE FROM guardrails WHERE kind = 'readiness'")
    with op.batch_alter_table("guardrails") as batch:
        batch.drop_constraint(op.f("ck_guardrails_kind"), type_="check")
        batch.create_check_constraint("kind", _kinds(OLD_KINDS))
    with op.batch_alter_table("readiness_plans") as batch:
        batch.drop_index(batch.f("ix_readiness_plans_model_version_id"))
    op.drop_table("readiness_plans")
