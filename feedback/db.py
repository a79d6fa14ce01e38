"""Declarative base, naming convention and column types shared by every model."""

from __future__ import annotations

import contextvars
import math
import sqlite3
import statistics
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Float,
    MetaData,
    Numeric,
    case,
    cast,
    event,
    func,
    literal,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JSONType = JSON().with_variant(JSONB(), "postgresql")


class LenientJSON(TypeDecorator[Any]):
    """A JSON column read so that one unreadable stored value comes back as None instead of failing the query.

    Used where many rows are read at once (exports, breakdowns, mining), so one broken row
    written before the checks existed never fails the whole page or file.
    """

    impl = JSONType
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        """Wrap the JSON decoder: text that does not decode reads as None."""
        decode = super().result_processor(dialect, coltype)

        def process(value: Any) -> Any:
            try:
                return decode(value) if decode else value
            except ValueError:
                return None

        return process


class valid_json(FunctionElement[Any]):  # used like a SQL function
    """The JSON column's value, or NULL where SQLite holds text that is not valid JSON (its JSON functions
    would fail the whole query on it); PostgreSQL's JSONB is always valid."""

    type = JSONType
    inherit_cache = True


@compiles(valid_json)
def _valid_json(element: valid_json, compiler: SQLCompiler, **kw: Any) -> str:
    """Any backend but SQLite: the column itself."""
    return compiler.process(element.clauses, **kw)


@compiles(valid_json, "sqlite")
def _valid_json_sqlite(element: valid_json, compiler: SQLCompiler, **kw: Any) -> str:
    """SQLite: NULL unless json_valid()."""
    column = compiler.process(element.clauses, **kw)
    return f"CASE WHEN json_valid({column}) THEN {column} END"


class _by_dialect(FunctionElement[Any]):  # a SQL construct
    """The first expression anywhere but PostgreSQL, the second there (both built once, so their
    bind parameters keep one name wherever the expression appears, as GROUP BY needs)."""

    inherit_cache = True


@compiles(_by_dialect)
def _by_dialect_default(element: _by_dialect, compiler: SQLCompiler, **kw: Any) -> str:
    """Any backend but PostgreSQL."""
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(_by_dialect, "postgresql")
def _by_dialect_postgresql(element: _by_dialect, compiler: SQLCompiler, **kw: Any) -> str:
    """PostgreSQL."""
    return compiler.process(list(element.clauses)[1], **kw)


def json_float(column: Any, key: str) -> ColumnElement[float]:
    """A JSON column's member as a float: NULL, never an error, when it is not a number a float can hold.

    SQLite reads 1e400 as infinity; PostgreSQL would fail the whole query casting it (or text).
    """
    value = type_coerce(column, JSONB())[key]
    within = case((func.abs(cast(value.astext, Numeric)) <= cast(literal("1e308"), Numeric), cast(value.astext, Float)))
    postgresql = case((func.jsonb_typeof(value) == "number", within))
    element = _by_dialect(valid_json(column)[key].as_float(), postgresql)
    element.type = Float()
    return element


def readable_json(column: Any) -> ColumnElement[Any]:
    """A JSON column for queries over many rows: invalid stored text reads as NULL in SQL and None in Python."""
    return type_coerce(valid_json(column), LenientJSON())


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are aware UTC in Python, timestamptz on PostgreSQL, ISO text on SQLite."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Normalise to UTC; SQLite stores it without an offset."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; pass an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Return aware UTC whatever the backend gave back."""
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    """Base class of every Countersign table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {datetime: UTCDateTime(), dict[str, Any]: JSONType}


# SQLite has one writer at a time. A request that will write takes the write lock when its
# transaction begins (BEGIN IMMEDIATE), so it waits its turn instead of failing on a stale
# read snapshot halfway through.
sqlite_write_intent: contextvars.ContextVar[bool] = contextvars.ContextVar("sqlite_write_intent", default=False)


def _floor(value: float | None) -> int | None:
    """SQL floor() for SQLite."""
    return None if value is None else math.floor(value)


def _ln(value: float | None) -> float | None:
    """SQL ln() for SQLite (NULL outside its domain, as PostgreSQL would raise)."""
    return None if value is None or value <= 0 else math.log(value)


class _Median:
    """SQL median() aggregate for SQLite (PostgreSQL has percentile_cont)."""

    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return statistics.median(self.values) if self.values else None


@event.listens_for(Engine, "connect")
def _sqlite_on_connect(dbapi_connection: Any, _record: Any) -> None:
    """WAL, foreign keys, a busy timeout and explicit transactions for every SQLite connection."""
    if not isinstance(dbapi_connection, sqlite3.Connection):
        return
    dbapi_connection.isolation_level = None
    # SQLite has floor() and ln() only when built with its math functions; the analytics use both.
    dbapi_connection.create_function("floor", 1, _floor, deterministic=True)
    dbapi_connection.create_function("ln", 1, _ln, deterministic=True)
    dbapi_connection.create_aggregate("median", 1, _Median)  # type: ignore[arg-type]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=15000")
    if cursor.execute("PRAGMA database_list").fetchone()[2]:  # a file, not :memory:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


@event.listens_for(Engine, "begin")
def _sqlite_on_begin(conn: Any) -> None:
    """Open SQLite transactions ourselves, taking the write lock up front when the request writes."""
    if conn.dialect.name == "sqlite":
        conn.exec_driver_sql("BEGIN IMMEDIATE" if sqlite_write_intent.get() else "BEGIN")


def one_of_check(column: str, values: tuple[str, ...]) -> str:
    """SQL text of a CHECK that a column holds one of the values."""
    return f"{column} IN ({', '.join(repr(v) for v in values)})"
