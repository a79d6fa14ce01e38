"""Every chart on every page, built here as one documented spec that `static/js/app.js` draws.

`templates/_chart.html` embeds the spec as JSON and tabulates the same numbers under the chart,
so a chart and its table cannot disagree. The spec, as `Chart.spec()` writes it:

- `categories`: the x axis as named categories (days, weeks, periods); each series then has
  `values`, one per category (`null` for a gap). Without `categories` the x axis is numeric and
  each series has `points` (`{"x", "y"}`), drawn as steps unless `stepped` is false.
- `xLabel`, `yLabel`: the axis titles, in words. `xFormat`, `yFormat`: how the table formats
  the values (`percent`, `hours`, `count`, or plain numbers when absent).
- `yMin`, `yMax`: the ends of the y axis; `null` fits the axis to the data. Rates run from 0 to 1.
- `xMax` and `clip`: a numeric axis cut short; the caption says where and why (`clip`).
- Each series: `label` (its legend entry) and `column` (its table column, default the label);
  `draw: false` for a column only in the table (the counts behind a rate), `table: false` for a
  line only in the chart (the zero line); `group` for series shown and hidden together, and
  `legend: false` on the second edge of a band so the band has one legend entry; `colour`,
  `width`, `dashed`, `pointRadius`, `showLine`; `format` for its table column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from analytics.cohorts import cohort_means
from feedback import wording

GREY, RED, AMBER = "#5f6b7a", "#b3261e", "#9a5b00"
CLIP_QUANTILE = 0.9  # a survival axis stops where this share of the curves' steps have happened


@dataclass(frozen=True)
class Series:
    """One line (or one table-only column) of a chart."""

    label: str
    values: list[float | None] | None = None  # over the chart's categories
    points: list[dict[str, float]] | None = None  # on a numeric x axis
    column: str | None = None
    draw: bool = True
    table: bool = True
    legend: bool = True
    group: str | None = None
    colour: str | None = None
    width: int | None = None
    dashed: bool = False
    point_radius: int | None = None
    show_line: bool = True
    format: str | None = None

    def spec(self) -> dict[str, Any]:
        """The series as app.js reads it: only what differs from the defaults."""
        out: dict[str, Any] = {"label": self.label}
        if self.values is not None:
            out["values"] = self.values
        if self.points is not None:
            out["points"] = self.points
        optional = {
            "column": self.column,
            "group": self.group,
            "colour": self.colour,
            "width": self.width,
            "pointRadius": self.point_radius,
            "format": self.format,
        }
        out.update({key: value for key, value in optional.items() if value is not None})
        flags = {"draw": self.draw, "table": self.table, "legend": self.legend, "showLine": self.show_line}
        out.update({key: False for key, on in flags.items() if not on})
        if self.dashed:
            out["dashed"] = True
        return out


@dataclass(frozen=True)
class Chart:
    """A line chart: its series, its axes in words, and the formats of its table."""

    series: list[Series]
    x_label: str
    y_label: str
    categories: list[str] | None = None
    x_format: str | None = None
    y_format: str | None = None
    y_min: float | None = 0.0
    y_max: float | None = 1.0
    x_max: float | None = None
    clip: dict[str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def spec(self) -> dict[str, Any]:
        """The JSON spec embedded in the page (see the module's docstring)."""
        out: dict[str, Any] = {
            "series": [s.spec() for s in self.series],
            "xLabel": self.x_label,
            "yLabel": self.y_label,
            "yMin": self.y_min,
            "yMax": self.y_max,
        }
        if self.categories is not None:
            out["categories"] = self.categories
        for key, value in (("xFormat", self.x_format), ("yFormat", self.y_format), ("xMax", self.x_max)):
            if value is not None:
                out[key] = value
        if self.categories is None:
            out["clip"] = self.clip
        return out


def _number(value: Any, digits: int | None = None) -> float | None:
    """A plain float for JSON (None for a missing value), rounded when asked."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return round(float(value), digits) if digits is not None else float(value)


def band(label: str, edges: dict[str, list[float | None]], group: str, **style: Any) -> list[Series]:
    """A band drawn as two edges: one legend entry, two table columns (named by `edges`), shown and hidden together."""
    (first, first_values), (second, second_values) = edges.items()
    return [
        Series(label, first_values, column=first, group=group, **style),
        Series(label, second_values, column=second, group=group, legend=False, **style),
    ]


def override_trend(trend: list[dict[str, Any]]) -> dict[str, Any]:
    """A model's weekly override rate, with the counts behind each rate in the table."""
    return Chart(
        categories=[w["week"] for w in trend],
        x_label="week starting",
        y_label="override rate",
        y_format="percent",
        y_max=None,
        series=[
            # Table-only columns first (the table reads: cases, overrides, rate).
            Series("accepts and overrides", [w["judged"] for w in trend], draw=False, format="count"),
            Series("overrides", [w["overrides"] for w in trend], draw=False, format="count"),
            Series("override rate", [_number(w["rate"], 6) for w in trend], point_radius=2),
        ],
    ).spec()


def control_chart(chart: pd.DataFrame, version: str | None) -> dict[str, Any]:
    """The p-chart of one version: daily rate, centre line, 3-sigma limits and the days that signal."""
    part = chart[chart["version"] == version] if version else chart.iloc[0:0]

    def values(column: str) -> list[float | None]:
        return [_number(v, 6) for v in part[column]]

    signals = [_number(p, 6) if s else None for p, s in zip(part["p"], part["signal"], strict=True)]
    limits = {"upper limit": values("ucl"), "lower limit": values("lcl")}
    return Chart(
        categories=[str(d) for d in part["day"]],
        x_label="day (UTC)",
        y_label="override rate",
        y_format="percent",
        y_max=None,
        series=[
            Series("override rate", values("p"), point_radius=2),
            Series("centre (baseline)", values("centre"), colour=GREY, width=1),
            *band("control limits (3 sigma)", limits, "limits", colour=RED, dashed=True, width=1),
            Series("signal", signals, show_line=False, point_radius=5, colour=RED),
        ],
    ).spec()


def exception_group_label(by: str, key: str) -> str:
    """A survival curve's name in words: the exception kind's label, or the severity or site."""
    if by == "kind":
        return wording.EXCEPTION_KIND_LABELS.get(key, key.replace("_", " "))
    return key.replace("_", " ").capitalize() if by == "severity" else key


def _nice_ceiling(hours: float) -> float:
    """Round an axis end up to whole days (or half days, or hours) so its ticks read well."""
    step = 24.0 if hours > 72 else 12.0 if hours > 24 else 1.0
    return float(math.ceil(hours / step) * step)


def _steps(hours: pd.Series, share: pd.Series) -> list[dict[str, float]]:
    """A survival curve's points on the hours axis."""
    return [{"x": round(h, 4), "y": round(s, 6)} for h, s in zip(hours, share, strict=True)]


def survival(curves: pd.DataFrame, by: str) -> dict[str, Any]:
    """Kaplan–Meier curves of time to resolution; a long tail is clipped and the caption says so.

    A few exceptions open for weeks would otherwise squeeze every curve into the first tenth of
    the axis; the table under the chart keeps every point.
    """
    x_max, clip = None, None
    if len(curves):
        longest = float(curves["hours"].max())
        end = _nice_ceiling(float(curves.loc[curves["hours"] > 0, "hours"].quantile(CLIP_QUANTILE) or longest))
        if 0 < end < longest:
            x_max, clip = end, {"at": end, "longest": round(longest, 1), "share": CLIP_QUANTILE}
    return Chart(
        series=[
            Series(
                exception_group_label(by, str(key)),
                points=[
                    {"x": round(h, 4), "y": round(s, 6)} for h, s in zip(part["hours"], part["survival"], strict=True)
                ],
            )
            for key, part in curves.groupby("key", sort=True)
        ],
        x_label="hours since opened",
        y_label="share still unresolved",
        x_format="hours",
        y_format="percent",
        x_max=x_max,
        clip=clip,
    ).spec()


def panel_cohorts(frame: pd.DataFrame, metric: str) -> dict[str, Any]:
    """An impact panel's mean outcome per period, one line per cohort."""
    means, period_label = cohort_means(frame)
    return Chart(
        categories=list(means.index),
        series=[
            Series(
                f"Live from {period_label[cohort]}" if cohort else "Never treated",
                [_number(v) for v in means[cohort]],
                point_radius=2,
            )
            for cohort in means.columns
        ],
        x_label="Period",
        y_label=metric.replace("_", " "),
        y_min=None,
        y_max=None,
    ).spec()


def event_study(result: dict[str, Any]) -> dict[str, Any]:
    """A staggered rollout's event study: estimates, pointwise 95% intervals and the uniform band."""
    rows = result["event_study"]["rows"]

    def column(name: str) -> list[float | None]:
        return [r[name] for r in rows]

    pointwise = {"95% interval, low": column("ci_low"), "95% interval, high": column("ci_high")}
    uniform = {"Uniform band, low": column("band_low"), "Uniform band, high": column("band_high")}
    return Chart(
        categories=[r["key"] for r in rows],
        series=[
            Series("Effect", column("att"), point_radius=3, width=3),
            *band("95% interval (pointwise)", pointwise, "ci", dashed=True, colour=GREY, width=1),
            *band("95% uniform band", uniform, "band", colour=AMBER, width=1),
            Series("No effect", [0.0] * len(rows), colour=RED, width=1, dashed=True, table=False),
        ],
        x_label="Periods since go-live (negative: before)",
        y_label="Effect on " + result["panel"]["metric"].replace("_", " "),
        y_min=None,
        y_max=None,
    ).spec()


def pattern_rate(frame: pd.DataFrame) -> dict[str, Any]:
    """A backlog pattern's weekly override rate per version, with the cases and overrides behind it."""
    weeks = sorted(frame["week"].unique().tolist())
    lines: list[Series] = []
    counts: list[Series] = []  # table-only columns: the cases and overrides behind each rate
    for version, rows in frame.groupby("version", sort=False):
        by_week = rows.set_index("week")

        def cell(week: str, name: str, by_week: pd.DataFrame = by_week) -> float | None:
            return _number(by_week.at[week, name]) if week in by_week.index else None

        lines.append(Series(str(version), [cell(w, "rate") for w in weeks], point_radius=3))
        for name, word in (("n", "cases"), ("overrides", "overrides")):
            counts.append(Series(f"{version} {word}", [cell(w, name) for w in weeks], draw=False, format="count"))
    return Chart(
        categories=weeks,
        series=lines + counts,
        x_label="Week",
        y_label="Override rate in this pattern",
        y_format="percent",
    ).spec()


def challenger_accuracy(categories: list[str], rows: list[dict[str, Any]], x_label: str) -> dict[str, Any]:
    """A challenger's and the champion's accuracy on the same cases per group, as points (the groups are
    not a sequence), with the challenger's 95% interval and the cases behind each rate in the table."""

    def values(name: str) -> list[float | None]:
        return [_number(r[name], 6) for r in rows]

    challenger_colour = "#1f5fbf"
    return Chart(
        categories=categories,
        x_label=x_label,
        y_label="accuracy against outcomes",
        y_format="percent",
        series=[
            Series("cases with an outcome", [_number(r["with_outcome"]) for r in rows], draw=False, format="count"),
            Series(
                "challenger accuracy", values("accuracy"), colour=challenger_colour, point_radius=6, show_line=False
            ),
            *band(
                "challenger's 95% interval",
                {"95% CI low": values("accuracy_ci_low"), "95% CI high": values("accuracy_ci_high")},
                "ci",
                colour=challenger_colour,
                point_radius=3,
                show_line=False,
            ),
            Series("champion accuracy", values("champion_accuracy"), colour=AMBER, point_radius=6, show_line=False),
        ],
    ).spec()
