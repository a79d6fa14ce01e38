"""Labelled training data written as CSV, JSON Lines or Parquet, streamed in chunks."""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable, Generator, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from feedback import csvsafe
from feedback.exports.queries import BASE_COLUMNS, ExportSpec, columns_of, export_query, json_columns
from feedback.json_input import finite_or_none

CHUNK = 5000


MEDIA_TYPES = {"csv": csvsafe.MEDIA_TYPE, "jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


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
    query, model = export_query(session, spec)
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


def _arrow_schema(columns: list[tuple[str, str]]) -> Any:
    import pyarrow as pa

    kinds = {"int": pa.int64(), "str": pa.string(), "float": pa.float64(), "bool": pa.bool_()}
    return pa.schema([(name, kinds.get(kind) or pa.timestamp("us", tz="UTC")) for name, kind in columns])


def stream(session: Session, spec: ExportSpec, progress: Callable[[int], None] | None = None) -> Generator[bytes]:
    """The export as a stream of byte chunks in the requested format."""
    _, model = export_query(session, spec)  # fails early (404) before any byte is sent
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
