"""CSV downloads of the tables the pages show."""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from typing import Any

from flask import Response

from feedback import csvsafe


def csv_response(rows: Iterable[Mapping[str, Any]], columns: list[str], filename: str) -> Response:
    """A CSV attachment of `rows`, written by the one safe writer (no cell can run as a formula)."""
    buffer = io.StringIO()
    writer = csvsafe.Writer(buffer)
    writer.writerow(columns)
    writer.write_records(rows, columns)
    return Response(
        buffer.getvalue(),
        mimetype=csvsafe.MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
