"""Export jobs: created, run in the background in chunks, stored, downloaded and forgotten."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import closing
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, delete, insert, select, update
from sqlalchemy.orm import Session

from feedback import audit, permissions
from feedback.audit import Actor, Change
from feedback.db import sqlite_write_intent, utcnow
from feedback.errors import NotFound
from feedback.exports.formats import stream
from feedback.exports.queries import ExportSpec, count, export_query
from feedback.models import (
    ExportChunk,
    ExportJob,
    User,
)
from feedback.permissions import Action

PIECE_BYTES = 1 << 20  # a stored export is kept in pieces of about this size


def create_job(session: Session, actor: User, *, spec: ExportSpec, keep_days: float = 7) -> ExportJob:
    """Queue an export (forgetting exports older than `keep_days`); the caller hands its id to a worker."""
    permissions.require(actor, Action.EXPORT)
    export_query(session, spec)  # unknown model or item: 404 now, not later
    forget_old_jobs(session, keep_days)
    job = ExportJob(format=spec.format, params=spec.as_params(), created_by_id=actor.id)
    session.add(job)
    session.flush()
    audit.record(session, Actor(actor.id, actor.email), [Change("export.queued", "export", job.id, job.params)])
    session.commit()
    return job


def spec_of(job: ExportJob) -> ExportSpec:
    """The spec an export job was created with."""
    p = job.params
    return ExportSpec(
        model_key=p["model"],
        format=job.format,
        version=p.get("version"),
        decided_from=datetime.fromisoformat(p["from"]) if p.get("from") else None,
        decided_to=datetime.fromisoformat(p["to"]) if p.get("to") else None,
        backlog_item_id=p.get("backlog_item"),
        overrides_only=bool(p.get("overrides_only")),
        include_reviewer=bool(p.get("include_reviewer")),
    )


def run_job(
    make_session: Callable[[], Session],
    job_id: int,
    make_reader: Callable[[], Session] | None = None,
) -> None:
    """Write the export into the database, recording progress; a failure removes its bytes and is raised.

    The bytes are stored in pieces of about `PIECE_BYTES` with the job's progress, so any host can
    serve the download and a failed export leaves nothing behind. The rows are read through
    their own session (`make_reader`, a read replica's where there is one), which keeps its
    streaming cursor open for the whole export; the job and its pieces go through a session on
    the primary (on SQLite a plain read does not block those writes).
    """
    with (make_reader or make_session)() as reader, make_session() as status:

        def write(statement: Executable, commit: bool = True) -> None:
            token = sqlite_write_intent.set(True)  # SQLite: take the write lock when the transaction begins
            try:
                status.execute(statement)
                if commit:
                    status.commit()
            finally:
                sqlite_write_intent.reset(token)

        def save(**values: Any) -> None:
            write(update(ExportJob).where(ExportJob.id == job_id).values(updated_at=utcnow(), **values))

        job = status.get(ExportJob, job_id)
        if job is None:
            raise NotFound(f"no export {job_id}")
        spec = spec_of(job)
        status.rollback()  # end the read, so the first write begins a transaction of its own
        pieces, pending, done, written = 0, bytearray(), 0, 0

        def keep(piece: bytes | bytearray) -> None:
            nonlocal pieces
            write(insert(ExportChunk).values(job_id=job_id, seq=pieces, data=bytes(piece)), commit=False)
            pieces += 1

        def progress(rows: int) -> None:
            nonlocal done
            done = rows

        try:
            save(status="running", rows_total=count(reader, spec))
            with closing(stream(reader, spec, progress)) as chunks:
                for chunk in chunks:
                    pending += chunk
                    written += len(chunk)
                    if len(pending) >= PIECE_BYTES:
                        keep(pending)
                        pending = bytearray()
                        save(rows_done=done)  # commits the piece with the progress
            if pending or not pieces:
                keep(pending)
            save(status="done", rows_done=done, bytes_total=written, finished_at=utcnow())
        except Exception:
            reader.rollback()
            status.rollback()
            write(delete(ExportChunk).where(ExportChunk.job_id == job_id))  # a failed attempt leaves no bytes
            raise  # the worker retries it, then fails it after its attempts
        reader.rollback()


def stored_bytes(session: Session, job_id: int) -> Iterator[bytes]:
    """A finished export's bytes, one stored piece at a time."""
    query = select(ExportChunk.data).where(ExportChunk.job_id == job_id).order_by(ExportChunk.seq)
    yield from session.scalars(query.execution_options(yield_per=1, stream_results=True))


def forget_old_jobs(session: Session, keep_days: float) -> int:
    """Delete exports (jobs and bytes) finished more than `keep_days` ago; the caller commits."""
    cutoff = utcnow() - timedelta(days=keep_days)
    old = select(ExportJob.id).where(ExportJob.finished_at < cutoff)
    session.execute(delete(ExportChunk).where(ExportChunk.job_id.in_(old)))
    return len(session.scalars(delete(ExportJob).where(ExportJob.id.in_(old)).returning(ExportJob.id)).all())
