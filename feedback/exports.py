"""Labelled training data: decided cases as CSV, JSON Lines or Parquet, streamed in chunks.

Rows come from a server-side cursor `CHUNK` at a time and leave as bytes at once, so an export
of millions of cases never holds more than one chunk in memory. The label is the human's final
action; reviewers appear only as their role unless an admin asks for identities.
"""

from __future__ import annotations

import io
import json
import math
from collections import Counter
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Executable, Select, delete, func, insert, select, text, update
from sqlalchemy.orm import Session

from feedback import audit, backlog, csvsafe, permissions, queries
from feedback.audit import Actor, Change
from feedback.db import readable_json, sqlite_write_intent, utcnow
from feedback.errors import NotFound, PermissionDenied
from feedback.json_input import MAX_KEYS, SEGMENT_MAX_KEYS, finite_or_none
from feedback.models import (
    EXPORT_FORMATS,
    BacklogItem,
    Decision,
    ExportChunk,
    ExportJob,
    Model,
    ModelVersion,
    Recommendation,
    User,
)
from feedback.params import Choice, Flag, Id, ModelKey, Version, When, parse_params
from feedback.permissions import Action

CHUNK = 5000
PIECE_BYTES = 1 << 20  # a stored export is kept in pieces of about this size
MEDIA_TYPES = {"csv": csvsafe.MEDIA_TYPE, "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}
# Column kinds: int, str, float, bool, time (pyarrow is imported only when a Parquet file is written).
BASE_COLUMNS: list[tuple[str, str]] = [
    ("case_id", "int"),
    ("external_id", "str"),
    ("model", "str"),
    ("model_version", "str"),
    ("site", "str"),
    ("recommended_action", "str"),
    ("confidence", "float"),
    ("label", "str"),
    ("action", "str"),
    ("reason_code", "str"),
    ("ai_shown", "bool"),
    ("quick", "bool"),  # decided on the review screen too soon after opening to have read it
    ("reviewer_role", "str"),
    ("outcome_label", "str"),
    ("created_at", "time"),
    ("opened_at", "time"),
    ("decided_at", "time"),
]


@dataclass(frozen=True)
class ExportSpec:
    """What to export."""

    model_key: str
    format: str = "csv"
    version: str | None = None
    decided_from: datetime | None = None
    decided_to: datetime | None = None
    backlog_item_id: int | None = None
    overrides_only: bool = False
    include_reviewer: bool = False

    def as_params(self) -> dict[str, Any]:
        """The spec as the query parameters that ask for it."""
        return {
            "model": self.model_key,
            "version": self.version,
            "from": self.decided_from.isoformat() if self.decided_from else None,
            "to": self.decided_to.isoformat() if self.decided_to else None,
            "backlog_item": self.backlog_item_id,
            "overrides_only": self.overrides_only,
            "include_reviewer": self.include_reviewer,
        }


EXPORT_PARAMS = (
    ModelKey(),
    Choice("format", EXPORT_FORMATS, default="csv"),
    Version(),
    When("from", description="decided at or after"),
    When("to", description="decided before"),
    Id("backlog_item", description="only the cases of this backlog item"),
    Flag("overrides_only"),
    Flag("include_reviewer", description="reviewers' e-mail addresses (admins only)"),
)


def parse_spec(user: User, args: Mapping[str, Any]) -> ExportSpec:
    """Check an export request (query string or form); 422 naming each bad field."""
    permissions.require(user, Action.EXPORT)
    values = parse_params(args, EXPORT_PARAMS)
    start, end = values["from"], values["to"]  # `to` before `from`: an empty export, as for the analytics
    if values["include_reviewer"] and user.role != "admin":
        raise PermissionDenied("only an admin may export reviewers' identities")
    return ExportSpec(
        model_key=values["model"],
        format=values["format"],
        version=values["version"],
        decided_from=start,
        decided_to=end,
        backlog_item_id=values["backlog_item"],
        overrides_only=values["overrides_only"],
        include_reviewer=values["include_reviewer"],
    )


def _query(session: Session, spec: ExportSpec) -> tuple[Select[Any], Model]:
    model = session.scalars(select(Model).where(Model.key == spec.model_key)).first()
    if model is None:
        raise NotFound(f"no model {spec.model_key}", {"model": "unknown model"})
    columns = [
        Recommendation.id.label("case_id"),
        Recommendation.external_id,
        ModelVersion.version.label("model_version"),
        Recommendation.site,
        Recommendation.recommended_action,
        Recommendation.confidence,
        Decision.final_action.label("label"),
        Decision.action,
        Decision.reason_code,
        Decision.ai_shown,
        Decision.quick,
        User.role.label("reviewer_role"),
        queries.first_label().label("outcome_label"),
        Recommendation.created_at,
        Decision.opened_at,
        Decision.decided_at,
        readable_json(Recommendation.segment).label("segment"),
        readable_json(Recommendation.features).label("features"),
    ]
    if spec.include_reviewer:
        columns.append(User.email.label("reviewer_email"))
    query = (
        select(*columns)
        .join(Recommendation, Recommendation.id == Decision.recommendation_id)
        .join(ModelVersion, ModelVersion.id == Decision.model_version_id)
        .join(User, User.id == Decision.reviewer_id)
        .where(Decision.model_id == model.id, Decision.action.in_(("accept", "override")))
        .order_by(Decision.id)
    )
    if spec.version:
        query = query.where(ModelVersion.version == spec.version)
    if spec.decided_from:
        query = query.where(Decision.decided_at >= spec.decided_from)
    if spec.decided_to:
        query = query.where(Decision.decided_at < spec.decided_to)
    if spec.overrides_only:
        query = query.where(Decision.action == "override")
    if spec.backlog_item_id:
        item = session.get(BacklogItem, spec.backlog_item_id)
        if item is None or item.model_id != model.id:
            raise NotFound(f"no backlog item {spec.backlog_item_id} for {model.key}", {"backlog_item": "unknown item"})
        query = query.where(Decision.model_version_id == item.model_version_id, backlog.pattern_clause(item.conditions))
    return query, model


def check(session: Session, spec: ExportSpec) -> None:
    """Raise NotFound for an unknown model or backlog item."""
    _query(session, spec)


def json_columns(session: Session, model_id: int) -> dict[str, str]:
    """The model's most common segment and feature keys with one Arrow type each, found in SQL.

    At most `SEGMENT_MAX_KEYS` segment and `MAX_KEYS` feature columns, the keys held by the most
    cases: however many keys a few cases carry, the file's width stays bounded. Rows whose
    stored JSON is unreadable are skipped here and export blank cells.
    """
    if session.get_bind().dialect.name == "postgresql":
        sql = """
            SELECT 'segment', e.key, jsonb_typeof(e.value), count(*) FROM recommendations r, jsonb_each(r.segment) e
             WHERE r.model_id = :m GROUP BY 2, 3
            UNION ALL
            SELECT 'feature', e.key, jsonb_typeof(e.value), count(*) FROM recommendations r,
                   jsonb_each(CASE jsonb_typeof(r.features) WHEN 'object' THEN r.features ELSE '{}' END) e
             WHERE r.model_id = :m GROUP BY 2, 3"""  # features may be JSON null, on which jsonb_each fails
    else:
        sql = """
            SELECT 'segment', e.key, e.type, count(*) FROM recommendations r, json_each(r.segment) e
             WHERE r.model_id = :m AND json_valid(r.segment) GROUP BY 2, 3
            UNION ALL
            SELECT 'feature', e.key, e.type, count(*) FROM recommendations r, json_each(COALESCE(r.features, '{}')) e
             WHERE r.model_id = :m AND json_valid(COALESCE(r.features, '{}')) GROUP BY 2, 3"""
    kinds: dict[str, set[str]] = {}
    cases: Counter[tuple[str, str]] = Counter()
    for source, key, kind, n in session.execute(text(sql), {"m": model_id}):
        cases[source, key] += n
        if kind != "null":
            kinds.setdefault(f"{source}.{key}", set()).add(
                {"integer": "number", "real": "number", "true": "boolean", "false": "boolean"}.get(kind, kind)
            )
    kept: set[str] = set()
    for source, most in (("segment", SEGMENT_MAX_KEYS), ("feature", MAX_KEYS)):
        common = sorted((pair for pair in cases.items() if pair[0][0] == source), key=lambda p: (-p[1], p[0][1]))
        kept.update(f"{source}.{key}" for (_, key), _ in common[:most])
    kinds = {name: found for name, found in kinds.items() if name in kept}
    out = {}
    for name in sorted(kinds):
        found = kinds[name]
        out[name] = "float" if found == {"number"} else "bool" if found == {"boolean"} else "str"
    return out


def count(session: Session, spec: ExportSpec) -> int:
    """How many decided cases the export will write."""
    query, _ = _query(session, spec)
    return int(session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0)


def _coerce(value: Any, kind: str) -> Any:
    """One cell; a value no file format can hold (NaN, infinity, a number past float range) is blank."""
    if value is None:
        return None
    if kind == "float":
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            return None
        return number if math.isfinite(number) else None
    if kind == "bool":
        return bool(value)
    if isinstance(value, str):
        return value
    return json.dumps(finite_or_none(value))


def _chunks(session: Session, spec: ExportSpec, extra: dict[str, str]) -> Iterator[list[dict[str, Any]]]:
    """Flat rows, CHUNK at a time, from a server-side cursor."""
    query, model = _query(session, spec)
    # Closed however the caller stops (failure, disconnect), so the server-side cursor never lingers.
    with session.execute(query.execution_options(yield_per=CHUNK, stream_results=True)) as result:
        for partition in result.mappings().partitions(CHUNK):
            rows = []
            for r in partition:
                row = {name: r[name] for name, _ in BASE_COLUMNS if name != "model"}
                row["model"] = model.key
                if spec.include_reviewer:
                    row["reviewer_email"] = r["reviewer_email"]
                segment, features = r["segment"] or {}, r["features"] or {}
                for name, kind in extra.items():
                    source, key = name.split(".", 1)
                    row[name] = _coerce((segment if source == "segment" else features).get(key), kind)
                rows.append(row)
            yield rows


def columns_of(spec: ExportSpec, extra: dict[str, str]) -> list[tuple[str, str]]:
    """The export's columns as (name, type): the base ones, the reviewer's e-mail if asked for, then `extra`."""
    fields = list(BASE_COLUMNS)
    if spec.include_reviewer:
        fields.append(("reviewer_email", "str"))
    return fields + list(extra.items())


def _arrow_schema(columns: list[tuple[str, str]]) -> Any:
    import pyarrow as pa

    kinds = {"int": pa.int64(), "str": pa.string(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema([(name, kinds.get(kind) or pa.timestamp("us", tz="UTC")) for name, kind in columns])


def stream(session: Session, spec: ExportSpec, progress: Callable[[int], None] | None = None) -> Generator[bytes]:
    """The export as a stream of byte chunks in the requested format."""
    _, model = _query(session, spec)  # fails early (404) before any byte is sent
    extra = json_columns(session, model.id)
    columns = columns_of(spec, extra)
    names = [name for name, _ in columns]
    done = 0
    if spec.format == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        schema = _arrow_schema(columns)
        sink = _Drain()
        writer = pq.ParquetWriter(pa.PythonFile(sink, mode="w"), schema, compression="zstd")
        for rows in _chunks(session, spec, extra):
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            done += len(rows)
            if progress:
                progress(done)
            yield sink.take()
        writer.close()
        yield sink.take()
        return
    if spec.format == "csv":
        buffer = io.StringIO()
        csvsafe.Writer(buffer).writerow(names)  # segment and feature keys come from callers: neutralised too
        yield buffer.getvalue().encode()
    for rows in _chunks(session, spec, extra):
        buffer = io.StringIO()
        if spec.format == "csv":
            # Text that a spreadsheet would run as a formula is neutralised; numbers stay numbers.
            csvsafe.Writer(buffer).write_records(rows, names)
        else:
            for row in rows:
                buffer.write(json.dumps({n: _json_cell(row.get(n)) for n in names}, separators=(",", ":")))
                buffer.write("\n")
        done += len(rows)
        if progress:
            progress(done)
        yield buffer.getvalue().encode()


def _json_cell(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class _Drain(io.RawIOBase):
    """A write-only file that hands over what was written since the last `take()`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        out, self._parts = b"".join(self._parts), []
        return out


# --- background exports for the UI -----------------------------------------------------------


def create_job(session: Session, user: User, spec: ExportSpec, keep_days: float = 7) -> ExportJob:
    """Queue an export (forgetting exports older than `keep_days`); the caller hands its id to a worker."""
    _query(session, spec)  # unknown model or item: 404 now, not later
    forget_old_jobs(session, keep_days)
    job = ExportJob(format=spec.format, params=spec.as_params(), created_by_id=user.id)
    session.add(job)
    session.flush()
    audit.record(session, Actor(user.id, user.email), [Change("export.queued", "export", job.id, job.params)])
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


def recent_jobs(session: Session, user: User, limit: int = 20) -> list[ExportJob]:
    """The user's own most recent export jobs, newest first."""
    return list(
        session.scalars(
            select(ExportJob).where(ExportJob.created_by_id == user.id).order_by(ExportJob.id.desc()).limit(limit)
        )
    )
