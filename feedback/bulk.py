"""Bulk inserts: COPY on PostgreSQL, an executemany INSERT elsewhere.

SQLAlchemy renders a 1,000-row insert as one `INSERT … VALUES` with about 15,000 parameters.
psycopg cannot cache a statement that long, so it parses it again in Python every time: half of
an ingest request went there. COPY streams the rows with no statement to parse. Ids are taken
from the table's sequence first, so the caller knows which row got which id without RETURNING.
"""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import ARRAY, ColumnElement, Table, any_, bindparam, insert, text
from sqlalchemy.exc import CompileError, DBAPIError
from sqlalchemy.orm import DeclarativeBase, InstrumentedAttribute, Session


def insert_rows(session: Session, model: type[DeclarativeBase], rows: list[dict[str, Any]]) -> None:
    """Insert these rows in the session's transaction (the caller commits)."""
    table = _checked(model, rows)
    if not rows:
        return
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    _copy(session, table, rows)


def insert_returning_ids(session: Session, model: type[DeclarativeBase], rows: list[dict[str, Any]]) -> list[int]:
    """Insert these rows and return their new ids, in the order of `rows` (ascending)."""
    table = _checked(model, rows)
    if not rows:
        return []
    if session.get_bind().dialect.name != "postgresql":
        return list(session.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True), rows))
    ids = sorted(
        session.scalars(
            text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
            {"table": table.name, "n": len(rows)},
        )
    )
    _copy(session, table, [{**row, "id": row_id} for row, row_id in zip(rows, ids, strict=True)])
    return ids


def _checked(model: type[DeclarativeBase], rows: list[dict[str, Any]]) -> Table:
    """The model's table, once the rows are known to name only its columns (executemany would drop the rest)."""
    table = cast(Table, model.__table__)
    unknown = set(rows[0] if rows else ()) - set(table.columns.keys())
    if unknown:
        raise CompileError(f"Unconsumed column names: {', '.join(sorted(unknown))}")
    return table


def among(
    session: Session, column: ColumnElement[Any] | InstrumentedAttribute[Any], values: list[Any]
) -> ColumnElement[bool]:
    """`column IN values`; on PostgreSQL as `= ANY(array)`, one parameter that psycopg can cache, not thousands."""
    if session.get_bind().dialect.name != "postgresql":
        return column.in_(values)
    return column == any_(bindparam(None, values, type_=ARRAY(column.type)))


def _copy(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """COPY rows into a PostgreSQL table, applying column defaults and type conversions as an INSERT would."""
    dialect = session.get_bind().dialect
    given = rows[0].keys()
    columns = [c for c in table.columns if c.key in given or c.default is not None]
    defaults = {c.key: c.default for c in columns if c.key not in given}
    converters = [(c.key, c.type.dialect_impl(dialect).bind_processor(dialect)) for c in columns]
    names = ", ".join(dialect.identifier_preparer.quote(c.name) for c in columns)
    statement = f"COPY {dialect.identifier_preparer.format_table(table)} ({names}) FROM STDIN"
    connection = session.connection()
    driver = connection.connection.driver_connection
    cursor = driver.cursor()  # type: ignore[union-attr]
    try:
        with cursor, cursor.copy(statement) as copy:
            _write(copy, rows, converters, defaults)
    except dialect.loaded_dbapi.Error as error:
        # SQLAlchemy did not run this statement, so do what it does on a failure: drop a lost
        # connection from the pool (else the rollback fails on it too) and raise its wrapped
        # error (IntegrityError, OperationalError, …) for callers and the error handlers.
        lost = dialect.is_disconnect(error, driver, cursor)
        if lost:
            connection.invalidate(error)
        raise DBAPIError.instance(
            statement, None, error, dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from error


def _write(copy: Any, rows: list[dict[str, Any]], converters: list[tuple[str, Any]], defaults: dict[str, Any]) -> None:
    """Send each row, in column order, to an open COPY."""
    for row in rows:
        values = []
        for key, convert in converters:
            if key in defaults:
                default = defaults[key]
                value = default.arg(None) if default.is_callable else default.arg
            else:
                value = row[key]
            # Converters see None too: a JSON column stores None as JSON null, as an INSERT does.
            values.append(value if convert is None else convert(value))
        copy.write_row(values)
