"""Many challenger recommendations at once: the path for imported history (the demo seeds through it).

Each row is what `add_challengers` stores (`challenger_row`), with the same audit event
(`store_rows`). The checks a live sender gets (idempotency, conflicts with stored ones) are the
importer's to have made: history arrives for a version registered just before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from feedback.audit import Actor
from feedback.challengers.services import challenger_row, require_owner, store_rows
from feedback.errors import NotFound, ValidationFailed
from feedback.models import ModelVersion
from feedback.schemas import ChallengerIn


@dataclass(frozen=True)
class Shadowed:
    """What a challenger version recommended for a stored case, and when it arrived."""

    recommendation_id: int
    item: ChallengerIn
    received_at: datetime


def record_history(session: Session, actor: Actor, *, version_id: int, shadowed: Sequence[Shadowed]) -> list[int]:
    """Store one version's challenger recommendations of imported history; returns their ids. The caller commits."""
    version = session.get(ModelVersion, version_id)
    if version is None:
        raise NotFound(f"no model version {version_id}")
    require_owner(session, actor, model_id=version.model_id)
    wrong = {
        f"[{i}].model_version": f"must be {version.version}"
        for i, one in enumerate(shadowed)
        if one.item.model_version != version.version
    }
    if wrong:
        raise ValidationFailed("the challengers name another version; nothing was stored", wrong)
    rows = [
        challenger_row(one.recommendation_id, version, one.item) | {"created_at": one.received_at} for one in shadowed
    ]
    return store_rows(session, actor, rows=rows)
