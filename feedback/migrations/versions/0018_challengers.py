"""challengers: shadow recommendations of other versions of a case's model, never shown to reviewers

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-29 14:30:00
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# JSON, stored as jsonb on PostgreSQL (defined here: a migration never imports application code).
JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "challenger_recommendations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("recommendation_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("model_version_id", sa.Integer(), nullable=False),
        sa.Column("recommended_action", sa.String(length=64), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=False),
        sa.Column("explanation", JSON, nullable=False),
        sa.Column("payload_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1", name=op.f("ck_challenger_recommendations_confidence")
        ),
        sa.ForeignKeyConstraint(
            ["recommendation_id"],
            ["recommendations.id"],
            name=op.f("fk_challenger_recommendations_recommendation_id_recommendations"),
        ),
        sa.ForeignKeyConstraint(
            ["model_id"], ["models.id"], name=op.f("fk_challenger_recommendations_model_id_models")
        ),
        sa.ForeignKeyConstraint(
            ["model_version_id"],
            ["model_versions.id"],
            name=op.f("fk_challenger_recommendations_model_version_id_model_versions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_challenger_recommendations")),
        sa.UniqueConstraint(
            "recommendation_id",
            "model_version_id",
            name=op.f("uq_challenger_recommendations_recommendation_id_model_version_id"),
        ),
    )
    op.create_index(
        "ix_challenger_recommendations_version", "challenger_recommendations", ["model_version_id", "recommendation_id"]
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_challenger_recommendations_version", table_name="challenger_recommendations")
    op.drop_table("challenger_recommendations")
