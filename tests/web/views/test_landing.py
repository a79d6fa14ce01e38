"""Each role lands where its work is: landing pages, the top menu, and the models list."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from feedback.catalog import services as catalog
from feedback.db import utcnow
from feedback.models import (
    ROLES,
    Alert,
    BacklogItem,
    Decision,
    Guardrail,
    Model,
    ModelOwner,
    ModelVersion,
    Recommendation,
)
from feedback.overrides import rollup
from feedback.review import decisions
from feedback.schemas import ModelVersionIn
from tests.factories import TEST_ACTOR, login, make_case, make_model, make_owner, make_user
from tests.helpers import statements

LANDING = {
    "frontline": "/queue",
    "exception_handler": "/exceptions",
    "model_owner": "/models",
    "analyst": "/impact",
    "admin": "/admin/models",
}
MENU = {
    "frontline": ["Queue"],
    "exception_handler": ["Queue", "Exceptions", "Resolution"],
    "model_owner": ["Models", "Resolution", "Impact", "Export", "Registry"],
    "analyst": ["Models", "Resolution", "Impact", "Export", "Registry"],
    "admin": ["Queue", "Exceptions", "Models", "Resolution", "Impact", "Export", "Registry", "Webhooks", "People"],
}


def menu_labels(html: str) -> list[str]:
    """The labels of the top menu's links."""
    nav = re.search(r'<header class="topbar">.*?<nav>(.*?)</nav>', html, re.S).group(1)
    return re.findall(r"<a [^>]*>([^<]+)</a>", nav)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_lands_on_its_page_and_sees_its_menu(app, session, role):
    make_model(session)
    user = make_user(session, role)
    client = app.test_client()
    signed_in = client.post("/login", data={"email": user.email, "password": "correct horse battery"})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == LANDING[role]
    assert client.get("/").headers["Location"] == LANDING[role]
    landing = client.get(LANDING[role])
    assert landing.status_code == 200
    assert menu_labels(landing.text) == MENU[role]
    # Every page in the menu opens for that role.
    nav = re.search(r"<nav>(.*?)</nav>", landing.text, re.S).group(1)
    for href in re.findall(r'href="([^"]+)"', nav):
        assert client.get(href).status_code == 200, href


def decide(session, n, reviewer, *, override, model="claims", version="v1"):
    """One decided case of a model."""
    rec = make_case(session, n, model=model, model_version=version)
    if override:
        decisions.record_decision(
            session,
            reviewer,
            recommendation_id=rec.id,
            action="override",
            final_action="deny",
            reason_code="missing_context",
        )
    else:
        decisions.record_decision(session, reviewer, recommendation_id=rec.id, action="accept")


def test_models_list_owned_first_with_versions_trend_alerts_and_backlog(session, client, htmx_client):
    make_model(session, "alpha")
    make_model(session, "claims")
    v2_spec = ModelVersionIn(version="v2", stage="pilot")
    catalog.add_model_version(session, TEST_ACTOR, model_key="claims", spec=v2_spec)
    reviewer = make_user(session, name="Rita")
    for n in range(10):
        decide(session, n, reviewer, override=n < 3)
    v1, v2 = session.scalars(select(ModelVersion).order_by(ModelVersion.id)).all()[-2:]
    v1.stage = "retired"
    for version in (v1, v2):
        guardrail = Guardrail(model_version_id=version.id, kind="override_rate_above", window_size=50, threshold=0.1)
        session.add(guardrail)
        session.flush()
        session.add(Alert(guardrail_id=guardrail.id, model_version_id=version.id, message=f"{version.version} breach"))
    for n, status in enumerate(("new", "triaged", "dismissed")):
        session.add(
            BacklogItem(
                model_id=v2.model_id,
                model_version_id=v2.id,
                pattern_key=f"p{n}",
                conditions=[],
                title="t",
                cases=10,
                overrides=5,
                rate=0.5,
                rate_low=0.2,
                rate_high=0.8,
                baseline=0.1,
                excess=4,
                q_value=0.01,
                wrong_share=0.5,
                priority=1.0,
                status=status,
            )
        )
    session.commit()
    owner = make_owner(session, "claims")
    login(client, owner)
    page = client.get("/models")
    assert page.status_code == 200
    # The model the owner owns comes first, though "Alpha" sorts before "Claims".
    assert page.text.index('id="model-claims"') < page.text.index('id="model-alpha"')
    claims = page.text[page.text.index('id="model-claims"') : page.text.index('id="model-alpha"')]
    assert ">yours<" in claims
    assert re.search(r"<th scope=\"row\">v2</th><td>pilot</td>", claims)
    assert re.search(r"<th scope=\"row\">v1</th><td>retired</td>", claims)
    # One open alert counts: the retired v1's is history.
    assert re.search(r'class="open-alerts">1<', claims)
    assert re.search(r'class="backlog-size">2<', claims)  # dismissed items are done
    chart = json.loads(re.search(r'id="trend-\d+">(.*?)</script>', claims, re.S).group(1))
    assert len(chart["categories"]) == 12 and chart["series"][-1]["values"][-1] == pytest.approx(0.3)
    # The same numbers as a table (built from the chart's own spec).
    assert re.search(r"<td[^>]*>10</td><td[^>]*>3</td><td[^>]*>30.0%</td>", claims)
    for path in ("", "/breakdown", "/right", "/backlog"):
        assert f'href="/models/claims{path}"' in claims
    assert 'href="/exports?model=claims"' in claims and 'href="/impact"' in claims
    alpha = page.text[page.text.index('id="model-alpha"') :]
    assert "No decisions with the AI shown" in alpha and 'class="open-alerts">0<' in alpha
    login(htmx_client, owner)
    fragment = htmx_client.get("/models")
    assert fragment.text.lstrip().startswith('<div id="model-summaries">')


def test_models_list_is_for_model_readers(session, client):
    login(client, make_user(session, "frontline"))
    assert client.get("/models").status_code == 403


def test_overview_defaults_to_the_current_and_previous_version_and_files_retired_alerts_as_history(session, client):
    make_model(session)
    catalog.add_model_version(
        session, TEST_ACTOR, model_key="claims", spec=ModelVersionIn(version="v2", stage="production")
    )
    reviewer = make_user(session, name="Rita")
    for n in range(12):  # v1: two decisions 120 days ago, ten 60 days ago (five overrides)
        decide(session, n, reviewer, override=n % 2 == 0)
    for n in range(12, 22):  # v2, today: one override in ten
        decide(session, n, reviewer, override=n == 12, version="v2")
    days_ago = {n: 120 if n < 2 else 60 for n in range(12)}
    for rec in session.scalars(
        select(Recommendation).where(Recommendation.external_id.in_([f"EXT-{n}" for n in range(12)]))
    ):
        n = int(rec.external_id.split("-")[1])
        session.execute(
            update(Decision)
            .where(Decision.recommendation_id == rec.id)
            .values(decided_at=utcnow() - timedelta(days=days_ago[n]))
        )
    rollup.rebuild(session)
    v1 = session.scalar(select(ModelVersion).where(ModelVersion.version == "v1"))
    v1.stage = "retired"
    guardrail = Guardrail(model_version_id=v1.id, kind="override_rate_above", window_size=50, threshold=0.1)
    session.add(guardrail)
    session.flush()
    session.add(Alert(guardrail_id=guardrail.id, model_version_id=v1.id, message="v1 override rate above 10%"))
    session.commit()
    login(client, make_owner(session))
    page = client.get("/models/claims").text
    go_live = (utcnow() - timedelta(days=120)).date().isoformat()
    start = (utcnow().date() - timedelta(days=89)).isoformat()
    note = re.search(r'id="period-note">(.*?)</p>', page, re.S).group(1)
    assert "v2 and the version before it, v1" in note
    assert go_live in note and f"clipped to the last 90 days (from {start})" in note
    assert f'name="from" value="{start}"' in page
    table = page[page.index('id="version-table"') :]
    assert ">v1</a>" in table and ">v2</a>" in table
    assert 'id="version-test"' in page  # v2 compared with v1
    # The other tabs open on the same period.
    assert re.search(rf'href="/models/claims/breakdown\?[^"]*from={start}', page)
    # The retired v1's alert is history: no red banner, listed apart.
    assert 'class="alert" role="alert"' not in page
    history = page[page.index('id="alert-history"') :]
    assert "v1 override rate above 10%" in history and "retired" in history
    # An explicit period still wins, and says nothing about versions.
    recent = client.get(f"/models/claims?from={utcnow().date().isoformat()}").text
    assert 'id="period-note"' not in recent and ">v1</a>" not in recent


def test_the_models_list_runs_the_same_few_queries_for_any_number_of_models(app, session, client):
    make_model(session, "claims")
    reviewer = make_user(session)
    decide(session, 1, reviewer, override=True)
    owner = make_owner(session, "claims")
    login(client, owner)
    few = statements(app, client, "/models")
    for key in ("alpha", "beta", "gamma", "delta"):
        make_model(session, key)
        session.add(ModelOwner(model_id=session.scalar(select(Model.id).where(Model.key == key)), user_id=owner.id))
    session.commit()
    assert statements(app, client, "/models") == few <= 12
