"""The model catalog: models, their owners and their versions."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from feedback.db import Base, JSONType, one_of_check, utcnow

if TYPE_CHECKING:
    from feedback.models.accounts import User


STAGES = ("shadow", "pilot", "production", "paused", "retired")


# Stages whose recommendations are shown to reviewers; in the others people decide unaided.
AI_VISIBLE_STAGES = ("pilot", "production")


class Model(Base):
    """A decision model: its allowed actions (labels) and the reason codes for overriding it."""

    __tablename__ = "models"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    actions: Mapped[list[str]] = mapped_column(JSONType)
    reason_codes: Mapped[list[dict[str, str]]] = mapped_column(JSONType)
    # The model's own words: {action code: label}; {attribute: {"label": ..., "values": {value: label}}}.
    # Missing entries read as the humanised code (feedback.wording).
    action_labels: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict, server_default=text("'{}'"))
    segment_labels: Mapped[dict[str, dict[str, Any]]] = mapped_column(
        JSONType, default=dict, server_default=text("'{}'")
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    versions: Mapped[list[ModelVersion]] = relationship(back_populates="model", order_by="ModelVersion.id")

    def action_label(self, code: str | None) -> str:
        """The model's label for an action code (the code humanised when it has none)."""
        from feedback.wording import humanise

        if code is None:
            return ""
        return (self.action_labels or {}).get(code) or humanise(code)

    def segment_label(self, attribute: str) -> str:
        """The model's label for a segment attribute ("claim_band" reads "Claim band" by default)."""
        from feedback.wording import humanise

        return ((self.segment_labels or {}).get(attribute) or {}).get("label") or humanise(attribute)

    def segment_value_label(self, attribute: str, value: Any) -> str:
        """The model's label for one value of a segment attribute (the value, underscores as spaces, if none)."""
        from feedback.wording import humanise_value

        values = ((self.segment_labels or {}).get(attribute) or {}).get("values") or {}
        key = value if isinstance(value, str) else _scalar_text(value)
        return values.get(key) or humanise_value(value)

    def reason_label(self, code: str | None) -> str:
        """Human label of a reason code (the code itself when unknown)."""
        for reason in self.reason_codes:
            if reason["code"] == code:
                return reason["label"]
        return code or ""


def _scalar_text(value: Any) -> str:
    """A segment value as the text its label is keyed by: true/false/null like JSON, numbers as written."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ModelOwner(Base):
    """A model owner responsible for one model: only they (and admins) change it."""

    __tablename__ = "model_owners"

    model_id: Mapped[int] = mapped_column(ForeignKey("models.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    user: Mapped[User] = relationship()


class ModelVersion(Base):
    """One version of a model, in a stage that decides whether reviewers see its output."""

    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("model_id", "version"),
        CheckConstraint(one_of_check("stage", STAGES), name="stage"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("models.id"))
    version: Mapped[str] = mapped_column(String(64))
    stage: Mapped[str] = mapped_column(String(16))
    notes: Mapped[str] = mapped_column(Text, default="")
    # Exception rules applied at ingest: min_confidence, policy_flags, required_features,
    # audit_sample_rate (see feedback.rules).
    rules: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    model: Mapped[Model] = relationship(back_populates="versions")

    @property
    def ai_visible(self) -> bool:
        """Whether reviewers see this version's recommendations."""
        return self.stage in AI_VISIBLE_STAGES
