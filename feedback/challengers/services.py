"""Storing challenger recommendations: validated at every depth, idempotent per (case, challenger version).

A challenger is another version of the case's own model. Sending the same payload again is a
no-op that answers the stored id; a different payload for a (case, version) already stored is a
409, as for recommendations. Only the model's owners (and admins) may send challengers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from feedback import audit, bulk, permissions
from feedback.audit import Actor, Change, canonical_json
from feedback.errors import Conflict, NotFound, Problems
from feedback.models import ChallengerRecommendation, Model, ModelVersion, Recommendation
from feedback.permissions import Action
from feedback.schemas import ChallengerIn, RecommendationIn


@dataclass(frozen=True)
class StoredChallenger:
    """Where one challenger recommendation is stored and whether this call created it."""

    id: int
    model_version: str
    created: bool


def challenger_hash(item: ChallengerIn) -> str:
    """Fingerprint of a challenger's content, independent of key order, spacing and omitted defaults."""
    return hashlib.sha256(canonical_json(item.model_dump(mode="json", exclude_defaults=True)).encode()).hexdigest()


def challenger_row(recommendation_id: int, version: ModelVersion, item: ChallengerIn) -> dict[str, Any]:
    """The row stored for a checked challenger recommendation of one case."""
    return {
        "recommendation_id": recommendation_id,
        "model_id": version.model_id,
        "model_version_id": version.id,
        "recommended_action": item.recommended_action,
        "confidence": item.confidence,
        "explanation": item.explanation.model_dump(mode="json"),
        "payload_hash": challenger_hash(item),
    }


def store_rows(session: Session, actor: Actor, *, rows: list[dict[str, Any]]) -> list[int]:
    """Insert challenger rows (checked already) with one audit event each; the caller commits."""
    ids = bulk.insert_returning_ids(session, ChallengerRecommendation, rows)
    keys = ("recommendation_id", "model_version_id")
    changes = [
        Change("challenger.ingested", "challenger", row_id, {key: r[key] for key in keys})
        for r, row_id in zip(rows, ids, strict=True)
    ]
    audit.record(session, actor, changes)
    return ids


def require_owner(session: Session, actor: Actor, *, model_id: int) -> None:
    """Only the model's owners and admins send its challengers."""
    permissions.require(actor, Action.SEND_CASES, session=session, model_id=model_id)


def versions_of(session: Session, model_ids: Sequence[int]) -> dict[tuple[int, str], ModelVersion]:
    """The versions of these models, by (model id, version)."""
    found = session.scalars(select(ModelVersion).where(ModelVersion.model_id.in_(list(model_ids))))
    return {(v.model_id, v.version): v for v in found}


def check(
    model: Model,
    champion_version_id: int | None,
    versions: Mapping[tuple[int, str], ModelVersion],
    items: Sequence[ChallengerIn],
    prefix: str,
    problems: Problems,
) -> None:
    """Note what is wrong with one case's challengers: unknown versions (404), the champion's own
    version or an action the model lacks (409), a version sent twice with different payloads (409).

    :param prefix: how the caller names the list, e.g. "" or "[3].challengers"
    """
    seen: dict[str, tuple[int, str]] = {}
    for index, item in enumerate(items):
        name = f"{prefix}[{index}]"
        version = versions.get((model.id, item.model_version))
        if version is None:
            problems.unknown[f"{name}.model_version"] = f"{model.key} has no version {item.model_version!r}"
        elif version.id == champion_version_id:
            problems.disallowed[f"{name}.model_version"] = "is the case's own version; a challenger is another one"
        if item.recommended_action not in model.actions:
            problems.disallowed[f"{name}.recommended_action"] = f"must be one of {', '.join(model.actions)}"
        fingerprint = challenger_hash(item)
        if item.model_version in seen and seen[item.model_version][1] != fingerprint:
            first = seen[item.model_version][0]
            problems.repeated[f"{name}.model_version"] = f"repeats {prefix}[{first}] with a different payload"
        seen.setdefault(item.model_version, (index, fingerprint))


def stored_for(session: Session, recommendation_ids: Sequence[int]) -> dict[tuple[int, int], tuple[int, str]]:
    """Id and payload hash of the challengers stored for these cases, by (case id, version id)."""
    rows = session.execute(
        select(
            ChallengerRecommendation.recommendation_id,
            ChallengerRecommendation.model_version_id,
            ChallengerRecommendation.id,
            ChallengerRecommendation.payload_hash,
        ).where(bulk.among(session, ChallengerRecommendation.recommendation_id, list(recommendation_ids)))
    )
    return {(rec_id, version_id): (row_id, fingerprint) for rec_id, version_id, row_id, fingerprint in rows}


def conflicts(
    stored: Mapping[tuple[int, int], tuple[int, str]],
    recommendation_id: int,
    model_id: int,
    versions: Mapping[tuple[int, str], ModelVersion],
    items: Sequence[ChallengerIn],
    prefix: str,
) -> dict[str, str]:
    """The challengers that differ from what is stored for the same (case, version), named by field."""
    out = {}
    for index, item in enumerate(items):
        version = versions[(model_id, item.model_version)]
        found = stored.get((recommendation_id, version.id))
        if found and found[1] != challenger_hash(item):
            out[f"{prefix}[{index}].model_version"] = "already stored for this case with a different payload"
    return out


def insert(
    session: Session,
    actor: Actor,
    *,
    stored: Mapping[tuple[int, int], tuple[int, str]],
    recommendation_id: int,
    model_id: int,
    versions: Mapping[tuple[int, str], ModelVersion],
    items: Sequence[ChallengerIn],
) -> list[StoredChallenger]:
    """Insert the challengers not stored yet (checked already), with audit events; the caller commits."""
    rows: list[dict[str, Any]] = []
    results: list[StoredChallenger | int] = []
    new_index: dict[int, int] = {}
    for item in items:
        version = versions[(model_id, item.model_version)]
        found = stored.get((recommendation_id, version.id))
        if found:
            results.append(StoredChallenger(found[0], item.model_version, False))
            continue
        if version.id not in new_index:
            new_index[version.id] = len(rows)
            rows.append(challenger_row(recommendation_id, version, item))
        results.append(new_index[version.id])
    ids = store_rows(session, actor, rows=rows)
    seen: set[int] = set()
    out = []
    for result, item in zip(results, items, strict=True):
        if isinstance(result, StoredChallenger):
            out.append(result)
        else:  # the first mention of a new version created it; a repeat in the same request did not
            out.append(StoredChallenger(ids[result], item.model_version, result not in seen))
            seen.add(result)
    return out


def add_challengers(
    session: Session, actor: Actor, *, recommendation_id: int, items: Sequence[ChallengerIn]
) -> list[StoredChallenger]:
    """Store challenger recommendations for one case, all or nothing; a replay is a no-op, a change a 409."""
    try:
        return _add(session, actor, recommendation_id, items)
    except IntegrityError:
        # Another request stored one of these between our check and our insert: judge it again.
        session.rollback()
        return _add(session, actor, recommendation_id, items)


def _add(
    session: Session, actor: Actor, recommendation_id: int, items: Sequence[ChallengerIn]
) -> list[StoredChallenger]:
    """One attempt at `add_challengers`."""
    rec = session.get(Recommendation, recommendation_id)
    if rec is None:
        raise NotFound(f"no recommendation {recommendation_id}")
    require_owner(session, actor, model_id=rec.model_id)
    model = rec.model
    versions = versions_of(session, [model.id])
    problems = Problems()
    check(model, rec.model_version_id, versions, items, "", problems)
    problems.raise_any("the challengers are invalid; nothing was stored")
    stored = stored_for(session, [rec.id])
    found = conflicts(stored, rec.id, model.id, versions, items, "")
    if found:
        raise Conflict("challengers conflict with stored ones; nothing was stored", found)
    results = insert(
        session, actor, stored=stored, recommendation_id=rec.id, model_id=model.id, versions=versions, items=items
    )
    session.commit()
    return results


# --- challengers sent with their case at ingest (feedback.services calls these) --------------------


def check_at_ingest(
    session: Session,
    actor: Actor,
    *,
    items: Sequence[RecommendationIn],
    models: Mapping[str, Model],
    versions: Mapping[tuple[int, str], ModelVersion],
    problems: Problems,
) -> None:
    """Check the `challengers` of each ingested item (named [i].challengers[j].field) and that the
    sender owns each model they are sent for; an item repeated in the batch must repeat its challengers."""
    owned: set[int] = set()
    seen: dict[tuple[int, str], tuple[int, list[str]]] = {}
    for index, item in enumerate(items):
        model = models.get(item.model)
        if model is None:
            continue
        fingerprints = [challenger_hash(c) for c in item.challengers]
        key = (model.id, item.external_id)
        if key in seen and seen[key][1] != fingerprints:
            problems.repeated[f"[{index}].challengers"] = f"repeats item [{seen[key][0]}] with different challengers"
        seen.setdefault(key, (index, fingerprints))
        if not item.challengers:
            continue
        if model.id not in owned:
            require_owner(session, actor, model_id=model.id)
            owned.add(model.id)
        champion = versions.get((model.id, item.model_version))
        check(model, champion.id if champion else None, versions, item.challengers, f"[{index}].challengers", problems)


def conflicts_at_ingest(
    session: Session,
    items: Sequence[RecommendationIn],
    models: Mapping[str, Model],
    versions: Mapping[tuple[int, str], ModelVersion],
    existing: Mapping[tuple[int, str], tuple[int, str]],
) -> dict[str, str]:
    """Challengers of already-stored cases that differ from the stored ones, named by field."""
    replays = [
        (index, item, existing[(models[item.model].id, item.external_id)][0])
        for index, item in enumerate(items)
        if item.challengers and (models[item.model].id, item.external_id) in existing
    ]
    if not replays:
        return {}
    stored = stored_for(session, [rec_id for _, _, rec_id in replays])
    out: dict[str, str] = {}
    for index, item, rec_id in replays:
        model_id = models[item.model].id
        out.update(conflicts(stored, rec_id, model_id, versions, item.challengers, f"[{index}].challengers"))
    return out


def store_at_ingest(
    session: Session,
    actor: Actor,
    *,
    items: Sequence[RecommendationIn],
    models: Mapping[str, Model],
    versions: Mapping[tuple[int, str], ModelVersion],
    case_ids: Mapping[tuple[int, str], int],
) -> None:
    """Store the challengers of each (first-seen) ingested item for its case; the caller commits."""
    done: set[tuple[int, str]] = set()
    with_challengers = [(item, (models[item.model].id, item.external_id)) for item in items if item.challengers]
    stored = stored_for(session, [case_ids[key] for _, key in with_challengers]) if with_challengers else {}
    for item, key in with_challengers:
        if key in done:
            continue
        done.add(key)
        insert(
            session,
            actor,
            stored=stored,
            recommendation_id=case_ids[key],
            model_id=key[0],
            versions=versions,
            items=item.challengers,
        )
