"""The readiness pages: scorecards for anyone who reads models, the plan editor for the model's owners."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from feedback.catalog import services as catalog
from feedback.models import ModelVersion
from feedback.models.readiness import ReadinessPlan
from feedback.schemas import ModelVersionIn
from tests.factories import TEST_ACTOR, login, make_model, make_owner, make_user

PLAN_URL = "/models/claims/versions/v2/readiness/plan"


@pytest.fixture
def world(session):
    make_model(session)
    spec = ModelVersionIn(version="v2", stage="shadow")
    catalog.add_model_version(session, TEST_ACTOR, model_key="claims", spec=spec)
    return {"owner": make_owner(session), "analyst": make_user(session, "analyst")}


def test_the_owner_registers_then_changes_a_plan_in_the_editor(client, session, world):
    login(client, world["owner"])
    page = client.get(PLAN_URL).text
    assert "Register the plan" in page and 'name="threshold_override_rate"' in page
    form = {"use_override_rate": "1", "direction_override_rate": "at_most", "threshold_override_rate": "12.5"}
    saved = client.post(PLAN_URL, data={**form, "min_n_override_rate": "200"})
    assert saved.status_code == 200 and "Plan version 1 is in force." in saved.text
    plan = session.scalar(select(ReadinessPlan))
    assert plan.criteria == [{"metric": "override_rate", "direction": "at_most", "threshold": 0.125, "min_n": 200}]
    assert "Override rate at most 12.5%, judged from 200 on" in saved.text
    # A change without a reason is refused in words, keeping what was typed; nothing is stored.
    refused = client.post(PLAN_URL, data={**form, "threshold_override_rate": "10"})
    assert refused.status_code == 422
    assert "reason: must say why the plan changes" in refused.text and 'value="10.0"' in refused.text
    too_big = client.post(PLAN_URL, data={**form, "threshold_override_rate": "150", "reason": "x"})
    assert too_big.status_code == 422 and "Override rate, threshold: must be a share between 0 and 1" in too_big.text
    assert session.scalar(select(ReadinessPlan.plan_version).order_by(ReadinessPlan.plan_version.desc())) == 1
    changed = client.post(PLAN_URL, data={**form, "threshold_override_rate": "10", "reason": "Leeds joins"})
    assert "Plan version 2 is in force." in changed.text and "Reason: Leeds joins" in changed.text


def test_readers_see_scorecards_and_plans_but_no_editor(client, session, world):
    login(client, world["analyst"])
    assert 'name="threshold_override_rate"' not in client.get(PLAN_URL).text
    assert client.post(PLAN_URL, data={"use_decisions": "1", "threshold_decisions": "5"}).status_code == 403
    assert session.scalar(select(ReadinessPlan.id)) is None
    scorecards = client.get("/models/claims/readiness", headers={"HX-Request": "true"})
    assert scorecards.status_code == 200 and "<html" not in scorecards.text
    version = session.scalar(select(ModelVersion).where(ModelVersion.version == "v2"))
    assert f'id="scorecard-{version.id}"' in scorecards.text and "No readiness plan" in scorecards.text
    frontline = make_user(session)
    client.get("/logout")
    login(client, frontline)
    assert client.get("/models/claims/readiness").status_code == 403
