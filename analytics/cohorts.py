"""An impact panel at a glance: how many units go live in each cohort, and each cohort's mean outcome per period.

The panel is long: one row per unit and period, with `unit`, `period`, `label` (the period as
people read it), `cohort` (the period a unit goes live, 0 for never) and `value`.
"""

from __future__ import annotations

import pandas as pd


def period_labels(frame: pd.DataFrame) -> pd.Series:
    """Each period's label, indexed by the period."""
    return frame.drop_duplicates("period").set_index("period")["label"]


def cohort_sizes(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per cohort: the cohort, its number of units, and its go-live period's label."""
    labels = period_labels(frame)
    return (
        frame.drop_duplicates("unit")
        .groupby("cohort")
        .size()
        .rename("units")
        .reset_index()
        .assign(label=lambda f: f["cohort"].map(labels))
    )


def cohort_means(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """The mean outcome per period (rows, by label) and cohort (columns), and the periods' labels."""
    means = frame.pivot_table(index="label", columns="cohort", values="value", aggfunc="mean").sort_index()
    return means, period_labels(frame)
