"""experiments and impact analysis

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 23:44:43.270174
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

# JSON, stored as jsonb on PostgreSQL (defined here: a migration never imports application code).
JSONType = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("hypothesis", sa.Text(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("unit", sa.String(length=16), nullable=False),
        sa.Column("salt", sa.String(length=64), nullable=False),
        sa.Column("ai_weight", sa.Double(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("row_version", sa.Integer(), nullable=False),
        sa.CheckConstraint("kind = 'ab' OR unit = 'site'", name=op.f("ck_experiments_staggered_by_site")),
        sa.CheckConstraint("kind IN ('ab', 'staggered')", name=op.f("ck_experiments_kind")),
        sa.CheckConstraint("status IN ('draft', 'running', 'stopped')", name=op.f("ck_experiments_status")),
        sa.CheckConstraint("unit IN ('case', 'reviewer', 'site')", name=op.f("ck_experiments_unit")),
        sa.CheckConstraint("ai_weight > 0 AND ai_weight < 1", name=op.f("ck_experiments_ai_weight")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_experiments_created_by_id_users")),
        sa.ForeignKeyConstraint(["model_id"], ["models.id"], name=op.f("fk_experiments_model_id_models")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experiments")),
        sa.UniqueConstraint("key", name=op.f("uq_experiments_key")),
    )
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_experiments_model_id"), ["model_id"], unique=False)
        batch_op.create_index(
            "uq_experiments_running_model",
            ["model_id"],
            unique=True,
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )

    op.create_table(
        "impact_panels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("period", sa.String(length=16), nullable=False),
        sa.Column("covariates", JSONType, nullable=False),
        sa.Column("units", sa.Integer(), nullable=False),
        sa.Column("periods", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("source IN ('platform', 'upload')", name=op.f("ck_impact_panels_source")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_impact_panels_created_by_id_users")),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_impact_panels_experiment_id_experiments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_impact_panels")),
    )
    op.create_table(
        "rollout_sites",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("site", sa.String(length=100), nullable=False),
        sa.Column("go_live_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_rollout_sites_experiment_id_experiments")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rollout_sites")),
        sa.UniqueConstraint("experiment_id", "site", name=op.f("uq_rollout_sites_experiment_id_site")),
    )
    op.create_table(
        "analysis_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("panel_id", sa.Integer(), nullable=True),
        sa.Column("experiment_id", sa.Integer(), nullable=True),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("progress", sa.Double(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("result", JSONType, nullable=True),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('queued', 'running', 'done', 'failed')", name=op.f("ck_analysis_runs_status")),
        sa.ForeignKeyConstraint(["created_by_id"], ["users.id"], name=op.f("fk_analysis_runs_created_by_id_users")),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_analysis_runs_experiment_id_experiments")
        ),
        sa.ForeignKeyConstraint(
            ["panel_id"], ["impact_panels.id"], name=op.f("fk_analysis_runs_panel_id_impact_panels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_analysis_runs")),
    )
    op.create_table(
        "exposures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("recommendation_id", sa.Integer(), nullable=False),
        sa.Column("reviewer_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.String(length=200), nullable=False),
        sa.Column("arm", sa.String(length=16), nullable=False),
        sa.Column("exposed_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("arm IN ('ai_shown', 'control')", name=op.f("ck_exposures_arm")),
        sa.ForeignKeyConstraint(
            ["experiment_id"], ["experiments.id"], name=op.f("fk_exposures_experiment_id_experiments")
        ),
        sa.ForeignKeyConstraint(
            ["recommendation_id"], ["recommendations.id"], name=op.f("fk_exposures_recommendation_id_recommendations")
        ),
        sa.ForeignKeyConstraint(["reviewer_id"], ["users.id"], name=op.f("fk_exposures_reviewer_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exposures")),
        sa.UniqueConstraint(
            "experiment_id",
            "recommendation_id",
            "reviewer_id",
            name=op.f("uq_exposures_experiment_id_recommendation_id_reviewer_id"),
        ),
    )
    with op.batch_alter_table("exposures", schema=None) as batch_op:
        batch_op.create_index("ix_exposures_experiment_arm", ["experiment_id", "arm"], unique=False)

    op.create_table(
        "panel_rows",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("panel_id", sa.Integer(), nullable=False),
        sa.Column("unit", sa.String(length=200), nullable=False),
        sa.Column("period", sa.Integer(), nullable=False),
        sa.Column("label", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("treated", sa.Boolean(), nullable=False),
        sa.Column("covariates", JSONType, nullable=False),
        sa.ForeignKeyConstraint(
            ["panel_id"], ["impact_panels.id"], name=op.f("fk_panel_rows_panel_id_impact_panels"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_panel_rows")),
        sa.UniqueConstraint("panel_id", "unit", "period", name=op.f("uq_panel_rows_panel_id_unit_period")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("panel_rows")
    with op.batch_alter_table("exposures", schema=None) as batch_op:
        batch_op.drop_index("ix_exposures_experiment_arm")

    op.drop_table("exposures")
    op.drop_table("analysis_runs")
    op.drop_table("rollout_sites")
    op.drop_table("impact_panels")
    with op.batch_alter_table("experiments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_experiments_running_model",
            sqlite_where=sa.text("status = 'running'"),
            postgresql_where=sa.text("status = 'running'"),
        )
        batch_op.drop_index(batch_op.f("ix_experiments_model_id"))

    op.drop_table("experiments")
