"""Signed checkpoints catch the rewrites a keyless hash chain cannot: a cut tail, and recomputed hashes."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from feedback import audit, checkpoints
from feedback.models import AuditEvent, AuditHead
from tests.factories import make_case, make_model, make_user
from tests.helpers import cut_tail, rewrite_with_recomputed_hashes

KEY = b"an audit key that lives outside the database"


def history(session, cases: int = 2) -> None:
    """Some events of different kinds."""
    if session.scalar(select(AuditHead.seq)) == 0:
        make_model(session)
        make_user(session)
    start = session.scalar(select(AuditEvent.seq).order_by(AuditEvent.seq.desc()).limit(1))
    for n in range(cases):
        make_case(session, start * 100 + n)


def checkpoint_now(session, path: Path, key: bytes = KEY) -> checkpoints.Checkpoint:
    """Sign the committed head and append it to path."""
    seq, head_hash = checkpoints.head(session)
    session.rollback()
    written = checkpoints.sign(key, seq, head_hash)
    checkpoints.append(path, written)
    return written


def verify(session, path: Path, key: bytes = KEY) -> tuple[audit.VerifyReport, checkpoints.Anchors]:
    """Verify the chain against the checkpoints in path."""
    anchors = checkpoints.read(key, [path])
    return audit.verify_chain(session, anchors=anchors.by_seq), anchors


def test_an_honest_chain_matches_every_checkpoint(session, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    history(session)
    first = checkpoint_now(session, path)
    history(session)
    second = checkpoint_now(session, path)
    checkpoint_now(session, path)  # the head has not moved: the same checkpoint again is fine
    report, anchors = verify(session, path)
    assert report.ok and anchors.problems == [], report.problems + anchors.problems
    assert report.anchored == 2 and anchors.read == 3 and first.seq < second.seq == report.checked
    assert anchors.latest == second and KEY.decode() not in path.read_text()


def test_a_cut_tail_passes_the_chain_alone_but_not_the_checkpoints(session, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    history(session)
    kept = checkpoint_now(session, path).seq
    history(session)
    seen = checkpoint_now(session, path).seq
    cut_tail(session, kept + 1)
    assert audit.verify_chain(session).ok  # the keyless chain cannot tell
    report, _ = verify(session, path)
    assert not report.ok
    assert report.problems == [
        f"a signed checkpoint of {checkpoints.read(KEY, [path]).latest.at} saw event #{seen}, "
        f"but the chain ends at #{kept + 1}: events were removed from its end"
    ]


def test_recomputed_hashes_pass_the_chain_alone_but_not_the_checkpoints(session, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    history(session)
    early = checkpoint_now(session, path).seq
    history(session)
    late = checkpoint_now(session, path).seq
    rewrite_with_recomputed_hashes(session, early + 1)
    assert audit.verify_chain(session).ok  # every link and hash checks out
    report, _ = verify(session, path)
    assert report.anchored == 1 and len(report.problems) == 1
    assert f"event #{late} differs from the signed checkpoint" in report.problems[0]
    assert f"history after #{early} and up to #{late} was rewritten" in report.problems[0]


def test_a_rewrite_before_the_first_checkpoint_is_caught_too(session, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    history(session)
    checkpoint_now(session, path)
    rewrite_with_recomputed_hashes(session, 1)
    report, _ = verify(session, path)
    assert any("history after #0" in p for p in report.problems)


def test_events_after_the_last_checkpoint_are_not_anchored(session, tmp_path):
    """The documented limit: what happened since the last checkpoint can still be cut unseen."""
    path = tmp_path / "checkpoints.jsonl"
    history(session)
    kept = checkpoint_now(session, path).seq
    history(session)
    cut_tail(session, kept)
    report, _ = verify(session, path)
    assert report.ok and report.anchored == 1


def test_forged_edited_and_foreign_checkpoints_are_reported(session, tmp_path):
    path = tmp_path / "checkpoints.jsonl"
    history(session)
    honest = checkpoint_now(session, path)
    moved = {**json.loads(honest.line()), "seq": honest.seq + 5}
    foreign = checkpoints.sign(b"someone else's key", honest.seq, "0" * 64)
    with path.open("a") as handle:
        handle.write(json.dumps(moved) + "\n")
        handle.write(foreign.line() + "\n")
        handle.write('{"mac": "ab", "seq": "not a number"}\n')
        handle.write('{"mac": "\u00e9", "seq": 1, "hash": "x", "at": "y"}\n')
        handle.write("an unrelated log line\n")
    report, anchors = verify(session, path)
    assert report.ok and report.anchored == 1  # only the genuine checkpoint was used
    assert anchors.problems == [
        f"{path}:2: the checkpoint's signature is wrong (forged, or another key)",
        f"{path}:3: the checkpoint's signature is wrong (forged, or another key)",
        f"{path}:4 is not a readable checkpoint",
        f"{path}:5: the checkpoint's signature is wrong (forged, or another key)",
    ]
    _, wrong_key = verify(session, path, key=b"not the key")
    assert wrong_key.by_seq == {} and len(wrong_key.problems) == 5  # the honest one too, under a wrong key


def test_checkpoints_are_read_back_from_json_logs(session, tmp_path):
    history(session)
    seq, head_hash = checkpoints.head(session)
    written = checkpoints.sign(KEY, seq, head_hash)
    log = tmp_path / "app.log"
    records = [
        {"level": "info", "logger": "countersign.access", "message": "GET /queue 200"},
        {"level": "info", "logger": "countersign.audit", "message": checkpoints.LOG_PREFIX + written.line()},
    ]
    log.write_text("".join(json.dumps(r) + "\n" for r in records))
    report, anchors = verify(session, log)
    assert anchors.problems == [] and report.ok and report.anchored == 1


def test_the_instance_key_is_made_once_privately_and_a_configured_key_wins(tmp_path):
    made = checkpoints.load_key("", str(tmp_path))
    assert len(made) == 64 and checkpoints.load_key("", str(tmp_path)) == made
    assert (tmp_path / "audit_key").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["audit_key"]  # no draft left behind
    assert checkpoints.load_key("from the environment", str(tmp_path)) == b"from the environment"
