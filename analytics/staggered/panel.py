"""A long panel checked and reshaped into the arrays the group-time estimator reads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd


def validate_panel(
    df: pd.DataFrame, y: str, unit: str, time: str, cohort: str, covariates: list[str] | None = None
) -> pd.DataFrame:
    """A balanced panel sorted by unit and time, or a ValueError saying what is wrong."""
    covariates = covariates or []
    missing = [c for c in (y, unit, time, cohort, *covariates) if c not in df.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")
    data = df[[unit, time, cohort, y, *covariates]]
    numeric = data[[y, *covariates]].to_numpy(float)
    if data[[time, cohort]].isna().any().any() or not np.isfinite(numeric).all():
        raise ValueError(f"{', '.join([y, *covariates])}, {time} and {cohort} must be numbers with no gaps")
    return data


@dataclass(frozen=True)
class _Panel:
    """A balanced panel as unit × period arrays."""

    periods: np.ndarray
    cohorts: np.ndarray  # per unit
    values: dict[str, np.ndarray]  # column -> units × periods


def _numbers(df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as integers or finite floats (no copy when it already is one), or a ValueError naming it."""
    values = df[column].to_numpy()
    if values.dtype.kind in "iu":  # no gaps possible
        return np.asarray(values)
    try:
        values = values.astype(float, copy=False)
    except (TypeError, ValueError):
        raise ValueError(f"{column} must be numbers with no gaps") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{column} must be numbers with no gaps")
    return np.asarray(values)


def _sorted_layout(units: np.ndarray, times: np.ndarray) -> int | None:
    """The number of periods when rows are already unit by unit, each unit's periods in one increasing order."""
    n_rows = len(times)
    head = units[: min(n_rows, 100_000)]
    changes = np.flatnonzero(head[1:] != head[:-1])
    n_periods = int(changes[0]) + 1 if len(changes) else len(head)
    if n_periods < 2 or n_rows % n_periods or n_periods == n_rows:
        return None
    by_unit = units.reshape(-1, n_periods)
    grid = times.reshape(-1, n_periods)
    first = grid[0]
    if not (np.all(first[1:] > first[:-1]) and (grid == first).all() and (by_unit == by_unit[:, :1]).all()):
        return None
    heads = by_unit[:, 0]
    distinct = np.all(heads[1:] > heads[:-1]) if heads.dtype.kind in "iuf" else pd.Index(heads).is_unique
    return n_periods if distinct else None


def reshape(df: pd.DataFrame, unit: str, time: str, cohort: str, columns: list[str]) -> _Panel:
    """Check the panel is balanced with a fixed cohort per unit, and lay it out as unit × period arrays.

    Rows already ordered unit by unit (each with the same increasing periods) are reshaped without
    copying; any other order is placed through factorised unit and period codes.
    """
    times = _numbers(df, time)
    units = df[unit].to_numpy()
    cohort_values = _numbers(df, cohort)
    values = {c: _numbers(df, c).astype(float, copy=False) for c in columns}
    layout = _sorted_layout(units, times)
    if layout is not None:
        width = layout
        periods = times[:width].astype(float)

        def grid(column: np.ndarray) -> np.ndarray:
            """The column as units × periods, a view."""
            return column.reshape(-1, width)

    else:
        unit_codes, _ = pd.factorize(units)
        if (unit_codes < 0).any():
            raise ValueError(f"{unit} must have no gaps")
        time_codes, periods = pd.factorize(times, sort=True)
        periods = np.asarray(periods, dtype=float)
        n_units, n_periods = unit_codes.max() + 1, len(periods)
        cells = np.bincount(unit_codes * n_periods + time_codes, minlength=n_units * n_periods)
        if (cells > 1).any():
            raise ValueError("each unit may appear once per period")
        if (cells == 0).any():
            raise ValueError("the panel must be balanced: every unit observed in every period")

        def grid(column: np.ndarray) -> np.ndarray:
            """The column placed as units × periods."""
            out = np.empty((n_units, n_periods))
            out[unit_codes, time_codes] = column
            return out

    cohort_grid = grid(cohort_values)
    if (cohort_grid != cohort_grid[:, :1]).any():
        raise ValueError(f"{cohort} must not change within a unit")
    cohorts = cohort_grid[:, 0].astype(float)
    if (cohorts < 0).any():
        raise ValueError(f"{cohort} must be 0 (never treated) or the first treated period")
    return _Panel(periods, cohorts, {c: grid(v) for c, v in values.items()})


@dataclass(frozen=True)
class _Design:
    """The panel after R's handling of edge cohorts: which periods and units enter, and in which cohorts."""

    periods: np.ndarray  # kept periods, increasing
    groups: np.ndarray  # cohort of each kept unit (0: never treated or compared only)
    kept_units: np.ndarray | None  # positions of kept units, None when all are kept
    cohorts: list[float]  # cohorts whose effects are estimated
    warnings: list[str]


def label_of(value: float, names: Mapping[float, str] | None = None) -> str:
    """A period or cohort as the analyst writes it: its name if given, else 2005 (not 2005.0)."""
    if names is not None and value in names:
        return str(names[value])
    return str(int(value)) if float(value).is_integer() else str(value)


def comparison_design(
    periods: np.ndarray, cohorts: np.ndarray, control: str, names: Mapping[float, str] | None = None
) -> _Design:
    """Recode, drop and restrict cohorts as R's `did` (2.5.1) does, each step with a warning.

    A cohort going live after the last period is never treated within the panel. Without
    never-treated units, periods from the last cohort's go-live on have no comparison: they
    are dropped, and the last cohort becomes the comparison (recoded as never treated with
    control="never", compared only with control="not_yet"). Units treated from the first
    period on have no pre-treatment period and are dropped.
    """
    notes: list[str] = []
    groups = cohorts.copy()
    late = groups > periods[-1]
    if late.any():
        listed = ", ".join(label_of(g, names) for g in np.unique(groups[late]))
        last = label_of(periods[-1], names)
        notes.append(
            f"{int(late.sum())} unit(s) go live after the last period ({last}; cohort {listed}): "
            "they are treated as never treated"
        )
        groups[late] = 0
    compared_only: float | None = None
    if not (groups == 0).any():
        latest = float(groups.max())
        keep = periods < latest
        if keep.sum() < 2:
            raise ValueError(
                "no unit is never treated, and fewer than two periods come before the last cohort goes live "
                f"({label_of(latest, names)}): there is no comparison (never-treated units are needed)"
            )
        dropped = ", ".join(label_of(t, names) for t in periods[~keep])
        if control == "never":
            groups[groups == latest] = 0
            notes.append(
                f"no unit is never treated: the last cohort ({label_of(latest, names)}) is used as never treated, and "
                f"periods {dropped} (from its go-live on) are dropped because nothing is left to compare with"
            )
        else:
            compared_only = latest
            notes.append(
                f"no unit is never treated: the last cohort ({label_of(latest, names)}) serves only as the comparison "
                f"and gets no effect of its own, and periods {dropped} (from its go-live on) are dropped because "
                "nothing is left to compare with"
            )
        periods = periods[keep]
    first = (groups > 0) & (groups <= periods[0])
    kept_units = None
    if first.any():
        listed = ", ".join(label_of(g, names) for g in np.unique(groups[first]))
        notes.append(
            f"{int(first.sum())} unit(s) treated from the first period on (cohort {listed}) are dropped: "
            "they have no period before treatment to compare"
        )
        kept_units = np.flatnonzero(~first)
        groups = groups[kept_units]
    estimated = sorted(float(g) for g in pd.unique(groups) if g > 0 and g != compared_only)
    if not estimated:
        raise ValueError("no cohort is treated after the first period with a comparison to estimate its effect")
    if control == "never" and not (groups == 0).any():
        raise ValueError("there are no never-treated units; use control='not_yet'")
    return _Design(periods, groups, kept_units, estimated, notes)
