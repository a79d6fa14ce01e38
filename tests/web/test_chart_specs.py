"""webapp/charts.py writes the spec its docstring documents, and that static/js/app.js reads."""

from __future__ import annotations

import pandas as pd

from webapp import charts


def test_a_band_has_one_legend_entry_two_table_columns_and_one_group():
    spec = charts.Chart(
        series=charts.band("limits", {"upper": [0.3], "lower": [0.1]}, "limits", dashed=True),
        categories=["2026-11-01"],
        x_label="day",
        y_label="rate",
    ).spec()
    assert [s.get("legend", True) for s in spec["series"]] == [True, False]
    assert [s["column"] for s in spec["series"]] == ["upper", "lower"]
    assert {s["group"] for s in spec["series"]} == {"limits"}
    assert all(s["dashed"] for s in spec["series"])


def test_axis_ends_are_always_written_and_null_fits_the_data():
    rate = charts.Chart(series=[], categories=[], x_label="week", y_label="rate").spec()
    fitted = charts.Chart(series=[], categories=[], x_label="week", y_label="hours", y_min=None, y_max=None).spec()
    assert (rate["yMin"], rate["yMax"]) == (0.0, 1.0)
    assert (fitted["yMin"], fitted["yMax"]) == (None, None)


def test_only_what_differs_from_the_defaults_is_written():
    assert charts.Series("cases", [3.0], draw=False, format="count").spec() == {
        "label": "cases",
        "values": [3.0],
        "format": "count",
        "draw": False,
    }


def test_a_pattern_chart_has_a_line_per_version_and_its_counts_only_in_the_table():
    frame = pd.DataFrame(
        {
            "version": ["v1", "v1", "v2"],
            "week": ["2026-11-02", "2026-11-09", "2026-11-09"],
            "rate": [0.5, 0.25, 0.1],
            "n": [10, 8, 20],
            "overrides": [5, 2, 2],
        }
    )
    spec = charts.pattern_rate(frame)
    assert spec["categories"] == ["2026-11-02", "2026-11-09"]
    drawn = [s for s in spec["series"] if s.get("draw", True)]
    assert [(s["label"], s["values"]) for s in drawn] == [("v1", [0.5, 0.25]), ("v2", [None, 0.1])]
    table_only = {s["label"]: s["values"] for s in spec["series"] if not s.get("draw", True)}
    assert table_only["v2 cases"] == [None, 20.0] and table_only["v1 overrides"] == [5.0, 2.0]


def test_a_long_survival_tail_is_clipped_and_the_spec_says_where():
    hours = [0.0, *range(1, 20), 500.0]
    share = [1 - i / len(hours) for i in range(len(hours))]
    curves = pd.DataFrame({"key": "policy", "hours": hours, "survival": share})
    spec = charts.survival(curves, "kind")
    assert spec["clip"]["longest"] == 500.0 and spec["xMax"] == spec["clip"]["at"] < 500
    assert spec["series"][0]["label"] == "Policy rule"


def test_a_challenger_chart_has_points_its_interval_as_one_legend_entry_and_the_counts_in_the_table():
    rows = [
        {
            "with_outcome": 40,
            "accuracy": 0.9,
            "accuracy_ci_low": 0.77,
            "accuracy_ci_high": 0.96,
            "champion_accuracy": 0.8,
        },
        {
            "with_outcome": 0,
            "accuracy": None,
            "accuracy_ci_low": None,
            "accuracy_ci_high": None,
            "champion_accuracy": None,
        },
    ]
    spec = charts.challenger_accuracy(["All cases", "travel"], rows, "Product")
    drawn = [s for s in spec["series"] if s.get("draw", True)]
    assert [s["label"] for s in drawn if s.get("legend", True)] == [
        "challenger accuracy",
        "challenger's 95% interval",
        "champion accuracy",
    ]
    assert all(s["showLine"] is False for s in drawn)  # groups, not a sequence: points only
    columns = {s.get("column", s["label"]): s["values"] for s in spec["series"]}
    assert columns["95% CI low"] == [0.77, None] and columns["cases with an outcome"] == [40.0, 0.0]
    assert (spec["yMin"], spec["yMax"], spec["categories"]) == (0.0, 1.0, ["All cases", "travel"])
