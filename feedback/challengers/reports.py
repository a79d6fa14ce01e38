"""Challenger comparisons assembled for the API and the page: SQL counts in, pure analytics, rows out.

Rows come in two scopes: `all` decided cases, and `unaided` ones, where the reviewer did not see
the AI (an A/B control arm or the shadow stage). Unaided decisions are the cleaner yardstick:
the reviewer could not have been swayed by the champion, so agreeing with them does not favour
the version they were shown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from analytics.challengers import compare
from feedback import formatting as fmt
from feedback import wording
from feedback.challengers import queries
from feedback.errors import NotFound, ValidationFailed
from feedback.frames import records
from feedback.models import Model, ModelVersion

SEGMENT_ATTR = re.compile(r"^segment\.([A-Za-z0-9_]{1,64})$")
BY_PATTERN = r"segment\.[A-Za-z0-9_]{1,64}"  # for query parameters
BY_HINT = "must be segment.ATTRIBUTE"
SCOPES = ("all", "unaided")
UNAIDED_WHY = (
    "Unaided decisions were made without seeing any AI recommendation, so the reviewer cannot have been"
    " swayed towards the champion: they are the fairest yardstick for both versions."
)
# The API's and the CSV's columns, in order.
COLUMNS = [
    "version",
    "segment",
    "decisions",
    "n",
    "agreement",
    "agreement_ci_low",
    "agreement_ci_high",
    "would_be_override_rate",
    "would_be_override_rate_ci_low",
    "would_be_override_rate_ci_high",
    "accuracy",
    "accuracy_ci_low",
    "accuracy_ci_high",
    "with_outcome",
    "champion_agreement",
    "champion_override_rate",
    "champion_accuracy",
    "champion_accuracy_ci_low",
    "champion_accuracy_ci_high",
    "right_only_champion",
    "right_only_challenger",
    "mcnemar_p",
    "mcnemar_method",
    "mcnemar_agreement_p",
]


@dataclass(frozen=True)
class Comparison:
    """One model's challengers against its champion: overall rows and, with a breakdown, segment rows."""

    model: Model
    version: str | None
    by: str | None
    versions: list[tuple[str, int]]
    rows: list[dict[str, Any]]
    since: date | None = None
    until: date | None = None

    def where(self, scope: str, segmented: bool) -> list[dict[str, Any]]:
        """The rows of one scope, overall (one per version) or per segment."""
        return [r for r in self.rows if r["decisions"] == scope and (r["segment"] is not None) == segmented]


def attribute_of(by: str | None) -> str | None:
    """The segment attribute of a breakdown like segment.claim_band (None for none), or a 422."""
    if not by:
        return None
    match = SEGMENT_ATTR.match(by)
    if not match:
        raise ValidationFailed("unknown breakdown", {"by": BY_HINT})
    return match.group(1)


def _rows(cells: pd.DataFrame, by: list[str], scope: str) -> list[dict[str, Any]]:
    """Compared rows of these cells, labelled with their scope."""
    if scope == "unaided":
        cells = cells[cells["aided"] == 0]
    if cells.empty:
        return []
    out = []
    for row in records(compare(cells, by)):
        row["decisions"] = scope
        row.setdefault("segment", None)
        out.append({c: row.get(c) for c in COLUMNS})
    return out


def comparison(
    session: Session,
    model: Model,
    version: str | None = None,
    by: str | None = None,
    since: date | None = None,
    until: date | None = None,
) -> Comparison:
    """Every challenger of the model (or one version) against the champion on the same decided cases.

    :param version: a challenger version of the model, or None for all of them
    :param by: segment.ATTRIBUTE to break the rows down by, or None
    :param since: only cases decided on this UTC day or later (None: from the first)
    :param until: only cases decided on this UTC day or earlier (None: to now); before `since`, nothing
    """
    decided = (_midnight(since), _midnight(until + timedelta(days=1)) if until else None)
    attribute = attribute_of(by)
    version_id = None
    if version is not None:
        found = version_named(model, version)
        if found is None:
            raise NotFound(f"{model.key} has no version {version!r}", {"version": "no such version of this model"})
        version_id = found.id
    overall = queries.cells(session, model.id, version_id, decided=decided)
    rows = _rows(overall, ["version"], "all") + _rows(overall, ["version"], "unaided")
    if attribute is not None:
        segmented = queries.cells(session, model.id, version_id, attribute, decided=decided)
        segmented["segment"] = segmented["segment"].fillna("(none)")
        rows += _rows(segmented, ["version", "segment"], "all") + _rows(segmented, ["version", "segment"], "unaided")
    return Comparison(model, version, by, challenger_versions(session, model), rows, since, until)


def _midnight(day: date | None) -> datetime | None:
    """The first instant of a UTC day."""
    return datetime.combine(day, time.min, tzinfo=UTC) if day else None


def challenger_versions(session: Session, model: Model) -> list[tuple[str, int]]:
    """The model's versions that sent challengers, with how many cases each scored."""
    return queries.challenger_versions(session, model.id)


def version_named(model: Model, version: str) -> ModelVersion | None:
    """The model's version with this name, if any."""
    return next((v for v in model.versions if v.version == version), None)


def _test_phrase(method: str) -> str:
    """McNemar's test as a sentence names it."""
    return "McNemar's exact test" if method == "exact binomial" else "McNemar's chi-square test"


def accuracy_sentence(row: dict[str, Any]) -> str:
    """One plain sentence on a challenger's accuracy against the champion's on the same cases."""
    name = f"Version {row['version']}"
    if row["accuracy"] is None:
        return f"{name} has no cases with a reported outcome yet, so its accuracy cannot be compared."
    difference = row["accuracy"] - row["champion_accuracy"]
    size = fmt.points(abs(difference), unit=False).lstrip("+")
    how = (
        "as often as" if size.strip("0.") == "" else f"{size} points {'more' if difference > 0 else 'less'} often than"
    )
    return (
        f"{name} was right {fmt.percent(row['accuracy'])} of the time (95% CI "
        f"{fmt.interval(row['accuracy_ci_low'], row['accuracy_ci_high'], fmt.percent)}; "
        f"{fmt.count(row['with_outcome'])} cases with outcomes), {how} the champion on the same cases; "
        f"by {_test_phrase(row['mcnemar_method'])}, {wording.chance_clause(row['mcnemar_p'])}."
    )


def segment_sentence(model: Model, by: str, rows: list[dict[str, Any]]) -> str:
    """One plain sentence on where, by segment, the challenger is more or less often right than the champion."""
    attribute = by.removeprefix("segment.")
    named: dict[str, list[str]] = {"better": [], "worse": []}
    for r in rows:
        if r["mcnemar_p"] is not None and r["mcnemar_p"] < wording.ALPHA and r["accuracy"] != r["champion_accuracy"]:
            side = "better" if r["accuracy"] > r["champion_accuracy"] else "worse"
            named[side].append(model.segment_value_label(attribute, r["segment"]))
    what = model.segment_label(attribute).lower()
    if not named["better"] and not named["worse"]:
        return f"By {what}, no group's accuracy differs from the champion's beyond what chance would explain."
    parts = []
    if named["better"]:
        parts.append(f"more often than the champion on {', '.join(named['better'])}")
    if named["worse"]:
        parts.append(f"less often on {', '.join(named['worse'])}")
    return (
        f"By {what}, version {rows[0]['version']} is right {' and '.join(parts)} "
        f"(McNemar's test, p < {wording.ALPHA:g} in each)."
    )


def agreement_sentence(row: dict[str, Any]) -> str:
    """One plain sentence on how often reviewers' final decisions matched the challenger."""
    if row["agreement"] is None:
        return f"Version {row['version']} has no decided cases yet."
    return (
        f"Reviewers' final decisions matched version {row['version']} on {fmt.percent(row['agreement'])} of cases "
        f"(95% CI {fmt.interval(row['agreement_ci_low'], row['agreement_ci_high'], fmt.percent)}), against "
        f"{fmt.percent(row['champion_agreement'])} for the champion."
    )


def override_sentence(row: dict[str, Any]) -> str:
    """One plain sentence on the override rate the challenger would have had."""
    if row["would_be_override_rate"] is None:
        return f"No reviewer saw the AI on version {row['version']}'s cases, so it has no would-be override rate."
    return (
        f"Had reviewers been shown version {row['version']}, they would have overridden "
        f"{fmt.percent(row['would_be_override_rate'])} of its recommendations (95% CI "
        f"{fmt.interval(row['would_be_override_rate_ci_low'], row['would_be_override_rate_ci_high'], fmt.percent)}),"
        f" against {fmt.percent(row['champion_override_rate'])} for the champion."
    )
