"""Migration 0011 repairs JSON that no reader accepts (NaN, infinities, numbers past float range)."""

from __future__ import annotations

import json
import logging

from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from feedback import migrate
from tests.factories import make_case, make_model

REVISION = "0011"


def test_broken_json_rows_are_repaired_and_oversized_ones_reported(scratch_url, caplog):
    engine = create_engine(scratch_url)
    parent = ScriptDirectory.from_config(migrate.alembic_config(engine)).get_revision(REVISION).down_revision
    # Rows are written through today's models (at head), then the schema goes back to 0011's parent.
    migrate.upgrade(engine)
    with Session(engine) as session:
        make_model(session)
        broken, fine, wide = (make_case(session, n).id for n in (1, 2, 3))
    migrate.downgrade(engine, parent)
    sqlite = engine.dialect.name == "sqlite"
    # What each backend could be left holding: SQLite kept NaN as text; JSONB keeps 1e400.
    features = '{"amount": NaN, "deep": [1, Infinity, {"x": -Infinity}], "big": 1e400}'
    if not sqlite:
        features = '{"amount": 1e400, "deep": [1, -1e400, {"x": 123456789012345678901234567890}], "big": 1e400}'
    wide_features = json.dumps({f"k{i}": i for i in range(300)})
    cast = "" if sqlite else "::jsonb"
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE recommendations SET features = '{features}'{cast} WHERE id = {broken}")
        conn.exec_driver_sql(f"UPDATE recommendations SET features = '{wide_features}'{cast} WHERE id = {wide}")
        if sqlite:
            conn.exec_driver_sql(f"UPDATE recommendations SET segment = '{{\"band\": NaN' WHERE id = {fine}")
    with caplog.at_level(logging.WARNING, logger="alembic.runtime.migration"):
        migrate.upgrade(engine)
    with engine.connect() as conn:
        stored = dict(conn.execute(text("SELECT id, CAST(features AS TEXT) FROM recommendations")).all())
        segment = conn.execute(text(f"SELECT CAST(segment AS TEXT) FROM recommendations WHERE id = {fine}")).scalar()
    assert json.loads(stored[broken]) == {"amount": None, "deep": [1, None, {"x": None}], "big": None}
    assert json.loads(stored[fine]) == {"amount": 12000}
    assert len(json.loads(stored[wide])) == 300  # past the limits: reported, not cut
    assert json.loads(segment) == ({} if sqlite else {"claim_band": "over_10k"})
    logged = caplog.text
    assert f"recommendations.features: replaced NaN, infinity or out-of-range numbers in rows [{broken}]" in logged
    assert f"recommendations [{wide}] exceed the features or segment limits" in logged
    assert (f"recommendations.segment: rows [{fine}] did not parse as JSON" in logged) == sqlite
    migrate.downgrade(engine, parent)  # nothing to undo, and nothing fails
    engine.dispose()
