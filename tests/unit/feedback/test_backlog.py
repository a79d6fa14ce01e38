"""The retraining backlog: mined from real decisions, refreshed without duplicates, verified by a newer version."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from feedback.backlog import queries as backlog_queries
from feedback.backlog import services as backlog
from feedback.catalog import services as catalog
from feedback.errors import NotAllowedByConfiguration, PermissionDenied, ValidationFailed
from feedback.models import AuditEvent, BacklogItem, ModelVersion
from feedback.schemas import ModelVersionIn
from tests.factories import TEST_ACTOR, make_model, make_owner, make_user
from tests.helpers import decide_many


@pytest.fixture
def planted(session):
    make_model(session)
    reviewer = make_user(session)
    decide_many(session, reviewer, "v1", 320, 1, lambda band: 0.45 if band == "over_10k" else 0.06)
    return reviewer


def test_the_planted_pattern_becomes_one_item_and_stays_one(session, planted):
    summary = backlog.refresh(session, TEST_ACTOR, model_key="claims")
    assert summary.created >= 1
    items = backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims"))
    top = items[0]
    assert top.pattern_key == "segment.claim_band=over_10k"
    assert top.title.startswith("v1 is overridden") and "where claim band is over 10k: 'Missing context'" in top.title
    assert top.cases == 80 and top.top_final_action == "deny" and top.top_reason == "missing_context"
    assert top.rate_low < top.rate < top.rate_high and top.rate > 2 * top.baseline
    again = backlog.refresh(session, TEST_ACTOR, model_key="claims")
    assert again.created == 0 and again.updated == summary.created
    count = session.scalar(select(func.count()).select_from(BacklogItem))
    assert count == summary.created
    assert session.scalar(select(func.count()).where(AuditEvent.action == "backlog.item_created")) == count
    cases = backlog_queries.pattern_cases(session, top)
    assert cases.rows and all(c.recommended_action == "pay" and c.action == "override" for c in cases.rows)
    assert cases.total == top.overrides


def test_verified_needs_a_newer_version_that_is_significantly_better(session, planted):
    backlog.refresh(session, TEST_ACTOR, model_key="claims")
    owner = make_owner(session)
    item = backlog_queries.ranked(session, backlog_queries.BacklogFilter("claims"))[0]
    with pytest.raises(NotAllowedByConfiguration) as err:
        backlog.update_item(session, owner, item_id=item.id, status="verified")
    assert "no newer version" in err.value.fields["status"]
    session.rollback()
    # v2 is no better on the pattern: still not verified.
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="production")
    )
    v2 = session.scalars(select(ModelVersion).where(ModelVersion.version == "v2")).one()
    v2.created_at = item.model_version.created_at + timedelta(seconds=1)
    session.commit()
    decide_many(session, planted, "v2", 120, 1000, lambda band: 0.6 if band == "over_10k" else 0.06)
    with pytest.raises(NotAllowedByConfiguration) as err:
        backlog.update_item(session, owner, item_id=item.id, status="verified")
    assert "not significantly lower" in err.value.fields["status"]
    session.rollback()
    # v3 fixes it: now the item can be verified, and the evidence is audited.
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v3", stage="production")
    )
    v3 = session.scalars(select(ModelVersion).where(ModelVersion.version == "v3")).one()
    v3.created_at = v2.created_at + timedelta(seconds=1)
    session.commit()
    decide_many(session, planted, "v3", 200, 2000, lambda band: 0.05)
    done = backlog.update_item(
        session, owner, item_id=item.id, status="verified", owner_email=owner.email, notes="fixed in v3"
    )
    assert done.status == "verified" and done.verified_by_version.version == "v3" and done.owner_id == owner.id
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "backlog.item_updated")).all()[-1]
    assert '"version":"v3"' in event.details
    with pytest.raises(PermissionDenied):
        backlog.update_item(session, planted, item_id=item.id, status="dismissed")
    with pytest.raises(ValidationFailed) as err:
        backlog.update_item(session, owner, item_id=item.id, status="lost")
    assert "status" in err.value.fields


def test_refresh_on_noise_creates_nothing_much(session):
    make_model(session)
    reviewer = make_user(session)
    decide_many(session, reviewer, "v1", 240, 1, lambda band: 0.1)
    summary = backlog.refresh(session, TEST_ACTOR, model_key="claims")
    assert summary.created == 0
