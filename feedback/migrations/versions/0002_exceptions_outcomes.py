"""exceptions, SLA policies, outcomes, version rules

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 20:42:06.667831
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OLD_STATUSES = ("open", "decided", "escalated")
NEW_STATUSES = ("open", "decided", "escalated", "exception", "resolved")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "sla_policies",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("hours", sa.Double(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('reviewer_escalation', 'low_confidence', 'policy', 'missing_data', 'model_error', 'audit_sample')",
            name=op.f("ck_sla_policies_kind"),
        ),
        sa.CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name=op.f("ck_sla_policies_severity")),
        sa.CheckConstraint("hours > 0", name=op.f("ck_sla_policies_hours")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_sla_policies_model_id_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sla_policies")),
        sa.UniqueConstraint("model_id", "kind", "severity", name=op.f("uq_sla_policies_model_id_kind_severity")),
    )
    op.create_table(
        "exceptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recommendation_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("severity", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("raised_by_id", sa.Integer(), nullable=True),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sla_due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("assignee_id", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by_id", sa.Integer(), nullable=True),
        sa.Column("resolution_action", sa.String(length=64), nullable=True),
        sa.Column("resolution_note", sa.Text(), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.CheckConstraint("(status = 'resolved') = (resolved_at IS NOT NULL)", name=op.f("ck_exceptions_resolved_at")),
        sa.CheckConstraint(
            "kind IN ('reviewer_escalation', 'low_confidence', 'policy', 'missing_data', 'model_error', 'audit_sample')",
            name=op.f("ck_exceptions_kind"),
        ),
        sa.CheckConstraint("severity IN ('low', 'medium', 'high', 'critical')", name=op.f("ck_exceptions_severity")),
        sa.CheckConstraint("status IN ('open', 'in_progress', 'resolved')", name=op.f("ck_exceptions_status")),
        sa.ForeignKeyConstraint(["assignee_id"], ["users.id"], name=op.f("fk_exceptions_assignee_id_users")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_exceptions_model_id_models")),
        sa.ForeignKeyConstraint(["raised_by_id"], ["users.id"], name=op.f("fk_exceptions_raised_by_id_users")),
        sa.ForeignKeyConstraint(
            ["recommendation_id"], ["recommendations.id"], name=op.f("fk_exceptions_recommendation_id_recommendations")
        ),
        sa.ForeignKeyConstraint(["resolved_by_id"], ["users.id"], name=op.f("fk_exceptions_resolved_by_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exceptions")),
        sa.UniqueConstraint("recommendation_id", "kind", name=op.f("uq_exceptions_recommendation_id_kind")),
    )
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_exceptions_assignee_id"), ["assignee_id"], unique=False)
        batch_op.create_index("ix_exceptions_model_opened", ["model_id", "opened_at"], unique=False)
        batch_op.create_index("ix_exceptions_queue", ["status", "sla_due_at"], unique=False)

    op.create_table(
        "outcomes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recommendation_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=100), nullable=False),
        sa.Column("label", sa.String(length=64), nullable=True),
        sa.Column("value", sa.Double(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("(label IS NULL) <> (value IS NULL)", name=op.f("ck_outcomes_label_or_value")),
        sa.ForeignKeyConstraint(
            ["recommendation_id"], ["recommendations.id"], name=op.f("fk_outcomes_recommendation_id_recommendations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outcomes")),
        sa.UniqueConstraint("recommendation_id", "source", name=op.f("uq_outcomes_recommendation_id_source")),
    )
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "rules",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),
            )
        )

    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "flags",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'[]'"),
            )
        )
        batch_op.add_column(sa.Column("error", sa.Text(), nullable=True))
        batch_op.alter_column("recommended_action", existing_type=sa.VARCHAR(length=64), nullable=True)
        batch_op.alter_column("confidence", existing_type=sa.Double(), nullable=True)
        batch_op.drop_constraint(op.f("ck_recommendations_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({', '.join(repr(s) for s in NEW_STATUSES)})")
        batch_op.create_check_constraint(
            "action_or_error", "(recommended_action IS NOT NULL AND confidence IS NOT NULL) OR error IS NOT NULL"
        )


def downgrade() -> None:
    """Revert this revision."""
    with op.batch_alter_table("recommendations", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_recommendations_action_or_error"), type_="check")
        batch_op.drop_constraint(op.f("ck_recommendations_status"), type_="check")
        batch_op.create_check_constraint("status", f"status IN ({', '.join(repr(s) for s in OLD_STATUSES)})")
        batch_op.alter_column("confidence", existing_type=sa.Double(), nullable=False)
        batch_op.alter_column("recommended_action", existing_type=sa.VARCHAR(length=64), nullable=False)
        batch_op.drop_column("error")
        batch_op.drop_column("flags")

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("rules")

    op.drop_table("outcomes")
    with op.batch_alter_table("exceptions", schema=None) as batch_op:
        batch_op.drop_index("ix_exceptions_queue")
        batch_op.drop_index("ix_exceptions_model_opened")
        batch_op.drop_index(batch_op.f("ix_exceptions_assignee_id"))

    op.drop_table("exceptions")
    op.drop_table("sla_policies")
