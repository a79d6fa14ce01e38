"""guardrails, alerts, decision model columns

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 21:06:44.372394
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "guardrails",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("window_size", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Double(), nullable=True),
        sa.Column("auto_pause", sa.Boolean(), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("last_value", sa.Double(), nullable=True),
        sa.Column("last_checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind IN ('override_rate_above', 'accuracy_below', 'control_chart')", name=op.f("ck_guardrails_kind")
        ),
        sa.CheckConstraint("window_size >= 10", name=op.f("ck_guardrails_window_size")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_guardrails_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_guardrails")),
    )
    with op.batch_alter_table("guardrails", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guardrails_model_version_id"), ["model_version_id"], unique=False)

    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guardrail_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("paused_from", sa.String(length=16), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('open', 'acknowledged')", name=op.f("ck_alerts_status")),
        sa.ForeignKeyConstraint(["acknowledged_by_id"], ["users.id"], name=op.f("fk_alerts_acknowledged_by_id_users")),
        sa.ForeignKeyConstraint(["guardrail_id"], ["guardrails.id"], name=op.f("fk_alerts_guardrail_id_guardrails")),
        sa.ForeignKeyConstraint(
            ["model_version_id"], ["model_versions.id"], name=op.f("fk_alerts_model_version_id_model_versions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alerts_guardrail_id"), ["guardrail_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alerts_model_version_id"), ["model_version_id"], unique=False)

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("model_version_id", sa.Integer(), nullable=True))
    # Copy each decision's model and version from its recommendation, then require them.
    op.execute(
        "UPDATE decisions SET model_id = (SELECT r.model_id FROM recommendations r WHERE r.id = decisions.recommendation_id),"
        " model_version_id = (SELECT r.model_version_id FROM recommendations r WHERE r.id = decisions.recommendation_id)"
    )
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.alter_column("model_id", existing_type=sa.Integer(), nullable=False)
        batch_op.alter_column("model_version_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index("ix_decisions_model_decided", ["model_id", "decided_at"], unique=False)
        batch_op.create_index("ix_decisions_version_decided", ["model_version_id", "decided_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_decisions_model_version_id_model_versions"), "model_versions", ["model_version_id"], ["id"]
        )
        batch_op.create_foreign_key(batch_op.f("fk_decisions_model_id_models"), "models", ["model_id"], ["id"])


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_decisions_model_id_models"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_decisions_model_version_id_model_versions"), type_="foreignkey")
        batch_op.drop_index("ix_decisions_version_decided")
        batch_op.drop_index("ix_decisions_model_decided")
        batch_op.drop_column("model_version_id")
        batch_op.drop_column("model_id")

    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_alerts_model_version_id"))
        batch_op.drop_index(batch_op.f("ix_alerts_guardrail_id"))

    op.drop_table("alerts")
    with op.batch_alter_table("guardrails", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guardrails_model_version_id"))

    op.drop_table("guardrails")
