"""The demo's shadow challenger: claims v3 is better than v2 on motor claims and worse on travel ones,
and the challenger page and API show it."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from demo.seed import seed as seed_demo
from feedback import migrate
from feedback.catalog import services as catalog
from feedback.challengers import reports


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """A 60-day demo on its own SQLite database (a few seconds)."""
    engine = create_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.sqlite'}")
    migrate.upgrade(engine)
    with Session(engine) as session:
        assert seed_demo(session, days=60, per_day=150, progress=lambda _: None)
    yield engine
    engine.dispose()


def test_v3_is_better_on_one_segment_and_worse_on_another(seeded):
    with Session(seeded) as session:
        model = catalog.get_model(session, "claims_triage")
        assert [(v.version, v.stage) for v in model.versions][-1] == ("v3", "shadow")
        result = reports.comparison(session, model, "v3", "segment.product")
        rows = {r["segment"]: r for r in result.where("all", segmented=True)}
        motor, travel = rows["motor"], rows["travel"]
        assert motor["accuracy"] > motor["champion_accuracy"] and motor["mcnemar_p"] < 0.05
        assert travel["accuracy"] < travel["champion_accuracy"] and travel["mcnemar_p"] < 0.05
        assert min(r["with_outcome"] for r in rows.values()) > 100  # enough cases for the page to show it
        # Part of v2's history was decided unaided (the A/B test's control arm): reported apart.
        assert result.where("unaided", segmented=False)[0]["n"] > 50
        sentence = reports.segment_sentence(model, "segment.product", list(rows.values()))
        assert "more often than the champion on motor" in sentence and "travel" in sentence
