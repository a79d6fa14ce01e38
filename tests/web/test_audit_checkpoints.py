"""The app anchors its audit chain outside the database, and `countersign audit verify` uses the anchors."""

from __future__ import annotations

import json
import logging

import pytest
from sqlalchemy import select

from feedback import checkpoints
from feedback.models import AuditHead
from tests.conftest import app_config
from tests.factories import make_model, make_user, payload, token_for
from tests.helpers import cut_tail, rewrite_with_recomputed_hashes

KEY = "audit-key-from-the-environment-0123456789"


@pytest.fixture
def anchored(app, database_url, tmp_path):
    """An app on the (emptied) test database that writes checkpoints to a file of its own."""
    from webapp import create_app
    from webapp.extensions import db

    path = tmp_path / "checkpoints.jsonl"
    settings = app_config(database_url, AUDIT_KEY=KEY, AUDIT_CHECKPOINT_FILE=str(path), AUDIT_CHECKPOINT_SECONDS=3600)
    made = create_app(settings)
    yield made, path
    with made.app_context():
        db.engine.dispose()


def ingest(client, headers, n: int) -> None:
    """One recommendation through the API (a write request)."""
    response = client.post("/api/v1/recommendations", json=payload(n), headers=headers)
    assert response.status_code == 201, response.text


def lines(path) -> list[dict[str, object]]:
    """The checkpoints in the file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_write_request_leaves_a_signed_checkpoint_and_the_key_is_never_written(anchored, session, caplog):
    app, path = anchored
    make_model(session)
    headers = token_for(app, session, make_user(session, "admin"))
    session.rollback()
    client = app.test_client()
    caplog.set_level(logging.INFO, logger="countersign.audit")
    assert client.get("/api/v1/models", headers=headers).status_code == 200
    assert not path.exists()  # reads anchor nothing
    ingest(client, headers, 1)
    head = session.scalar(select(AuditHead))
    written = lines(path)
    assert [(c["seq"], c["hash"]) for c in written] == [(head.seq, head.last_hash)]
    assert checkpoints.read(KEY.encode(), [path]).problems == []
    ingest(client, headers, 2)
    assert len(lines(path)) == 1  # the next one is due in an hour
    logged = [r.getMessage() for r in caplog.records if r.name == "countersign.audit"]
    assert logged == [checkpoints.LOG_PREFIX + path.read_text().strip()]
    assert KEY not in path.read_text() and KEY not in caplog.text
    session.rollback()
    checkpointed = app.test_cli_runner().invoke(args=["audit", "checkpoint"])
    assert checkpointed.exit_code == 0, checkpointed.output
    assert lines(path)[-1]["seq"] == session.scalar(select(AuditHead.seq)) > written[0]["seq"]


@pytest.mark.parametrize("rewrite", ["cut_tail", "recomputed_hashes"])
def test_audit_verify_catches_both_rewrites_given_the_checkpoints(anchored, session, rewrite):
    app, path = anchored
    runner = app.test_cli_runner()
    make_model(session)
    make_user(session)
    first = runner.invoke(args=["audit", "checkpoint"])
    assert first.exit_code == 0, first.output
    early = lines(path)[-1]["seq"]
    make_user(session)
    make_user(session)
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    honest = runner.invoke(args=["audit", "verify"])
    assert honest.exit_code == 0, honest.output
    assert "matches 2 signed checkpoint(s)" in honest.output
    if rewrite == "cut_tail":
        cut_tail(session, early)
        expected = "events were removed from its end"
    else:
        rewrite_with_recomputed_hashes(session, early)
        expected = "was rewritten"
    unanchored = runner.invoke(args=["audit", "verify", "--checkpoints", str(path.with_name("none.jsonl"))])
    assert unanchored.exit_code == 2  # no such file: refused, never silently skipped
    empty = path.with_name("empty.jsonl")
    empty.write_text("")
    blind = runner.invoke(args=["audit", "verify", "--checkpoints", str(empty)])
    assert blind.exit_code == 0 and "WARNING: no signed checkpoints" in blind.output  # the chain alone passes
    caught = runner.invoke(args=["audit", "verify"])
    assert caught.exit_code == 1 and expected in caught.output, caught.output


def test_audit_verify_reads_checkpoints_from_a_json_log(anchored, session, tmp_path):
    app, path = anchored
    make_model(session)
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    record = {"logger": "countersign.audit", "message": checkpoints.LOG_PREFIX + path.read_text().strip()}
    log = tmp_path / "app.log"
    log.write_text('{"message": "GET /queue 200"}\n' + json.dumps(record) + "\n")
    result = runner.invoke(args=["audit", "verify", "--checkpoints", str(log)])
    assert result.exit_code == 0 and "matches 1 signed checkpoint(s)" in result.output, result.output
    forged = tmp_path / "forged.log"
    forged.write_text(path.read_text().replace('"seq":', '"seq":1'))
    refused = runner.invoke(args=["audit", "verify", "--checkpoints", str(forged)])
    assert refused.exit_code == 1 and "signature is wrong" in refused.output


def test_a_restore_moves_the_old_checkpoints_aside_and_anchors_the_restored_chain(anchored, session, tmp_path):
    app, path = anchored
    runner = app.test_cli_runner()
    make_model(session)
    target = tmp_path / "countersign.backup"
    assert runner.invoke(args=["db", "backup", str(target)]).exit_code == 0
    make_user(session)  # lost by the restore, as is the checkpoint that saw it
    assert runner.invoke(args=["audit", "checkpoint"]).exit_code == 0
    session.close()
    restored = runner.invoke(args=["db", "restore", str(target), "--yes"])
    assert restored.exit_code == 0 and "earlier audit checkpoints moved to" in restored.output, restored.output
    (kept,) = tmp_path.glob("checkpoints.jsonl.before-restore-*")
    assert lines(kept)[0]["seq"] > lines(path)[0]["seq"] == session.scalar(select(AuditHead.seq))
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0 and "matches 1 signed checkpoint(s)" in verified.output, verified.output
    refused = runner.invoke(args=["audit", "verify", "--checkpoints", str(kept)])
    assert refused.exit_code == 1 and "removed from its end" in refused.output  # what the restore took back
