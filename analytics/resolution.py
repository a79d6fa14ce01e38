"""Time to resolve exceptions, with still-open ones right-censored (Kaplan–Meier).

Every function is pure: it takes a DataFrame of exceptions and returns a new DataFrame.
"""

from __future__ import annotations

import math
from collections.abc import Hashable

import numpy as np
import pandas as pd
from statsmodels.duration.survfunc import SurvfuncRight

from analytics.rates import wilson_interval

EXCEPTION_COLUMNS = ("opened_at", "resolved_at", "sla_due_at")
GROUPINGS = ("kind", "severity", "site")
QUANTILE_TOLERANCE = 1e-12
BUCKETS_PER_E = 20  # handling-time buckets: round(ln seconds * 20)
RESOLUTION_COLUMNS = (
    "key",
    "n",
    "resolved",
    "censored",
    "median_hours",
    "median_ci_low",
    "median_ci_high",
    "p90_hours",
    "p90_ci_low",
    "p90_ci_high",
    "sla_breach_rate",
    "sla_breach_ci_low",
    "sla_breach_ci_high",
    "sla_known_breaches",
)
Z95 = 1.959963984540054


def _check(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Fail clearly when a frame lacks the columns an analytic needs."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")


def with_durations(frame: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """Add `hours` (to resolution, or to `now` if still open), `sla_units`, `resolved` and `breached`.

    The frame is read as it stood at `now`: exceptions opened later are left out, and a
    resolution after `now` had not happened yet, so that exception is open. An open exception is
    censored at `now`: its time so far is a lower bound, never a resolution. `breached` marks
    the breaches known at `now` (resolved late, or open past due). `sla_units` is the time open
    in multiples of the exception's own SLA (1 = its due time).

    :param frame: one row per exception with opened_at, resolved_at (NaT while open), sla_due_at
    :param now: the censoring time (the "as of" time), tz-aware UTC
    """
    _check(frame, EXCEPTION_COLUMNS)
    if (frame["resolved_at"] < frame["opened_at"]).any():
        raise ValueError("an exception is resolved before it opens")
    out = frame[frame["opened_at"] <= now].copy()
    resolved = out["resolved_at"].notna() & (out["resolved_at"] <= now)
    end = out["resolved_at"].where(resolved, now)
    out["hours"] = (end - out["opened_at"]).dt.total_seconds() / 3600
    sla_hours = (out["sla_due_at"] - out["opened_at"]).dt.total_seconds() / 3600
    if (sla_hours <= 0).any():
        raise ValueError("an exception is due before it opens")
    out["sla_units"] = out["hours"] / sla_hours
    out["resolved"] = resolved
    out["breached"] = end > out["sla_due_at"]
    return out


def _finite(value: float) -> float | None:
    """A number, or None for NaN and infinities (a percentile the data cannot reach)."""
    return None if value is None or not math.isfinite(value) else float(value)


def _km_quantiles(hours: np.ndarray, events: np.ndarray) -> dict[str, float | None]:
    """Median and 90th percentile of time to resolution with 95% intervals (log-log transform).

    The p-quantile is the first time at which S(t) <= 1 - p (the textbook definition), with a
    tolerance so that an S of exactly 0.5, computed as a product of fractions, does not flip
    the answer on rounding noise.
    """
    out: dict[str, float | None] = dict.fromkeys(
        ("median_hours", "median_ci_low", "median_ci_high", "p90_hours", "p90_ci_low", "p90_ci_high")
    )
    if events.sum() == 0:
        return out  # nothing resolved yet: no percentile is estimable
    survival = SurvfuncRight(hours, events)
    for name, p in (("median", 0.5), ("p90", 0.9)):
        reached = np.flatnonzero(survival.surv_prob <= 1 - p + QUANTILE_TOLERANCE)
        out[f"{name}_hours"] = float(survival.surv_times[reached[0]]) if len(reached) else None
        # log(-log S) is infinite where S reaches 0 or 1; those times are simply outside the interval.
        with np.errstate(divide="ignore", invalid="ignore"):
            low, high = survival.quantile_ci(p, method="cloglog")
        out[f"{name}_ci_low"], out[f"{name}_ci_high"] = _finite(low), _finite(high)
    return out


def sla_breach(sla_units: np.ndarray, events: np.ndarray) -> tuple[float | None, float | None, float | None]:
    """SLA breach rate with a 95% interval: 1 − the Kaplan–Meier P(resolved within its own SLA).

    Time runs in units of each exception's SLA, so every exception is due at 1. The breach rate
    is the Kaplan–Meier probability of still being open at 1, S(1). An exception still open and
    not yet due is censored below 1: it is neither a breach nor on time yet, and counting it as
    on time (a naive share of breaches) biases the rate low. Resolving exactly at the due time
    is within the SLA. The interval is the log(−log) (exponential Greenwood) interval of S(1),
    as lifelines computes it.

    :param sla_units: time open in multiples of the SLA, per exception
    :param events: 1 where resolved, 0 where still open (censored)
    """
    if len(sla_units) == 0:
        return None, None, None
    times, resolved = sla_units, events.astype(bool)
    survival, greenwood = 1.0, 0.0
    for t in np.unique(times[resolved & (times <= 1.0)]):
        at_risk = int((times >= t).sum())
        deaths = int((resolved & (times == t)).sum())
        survival *= 1 - deaths / at_risk
        if at_risk > deaths:
            greenwood += deaths / (at_risk * (at_risk - deaths))
    if survival > 0 and times.max() < 1.0:
        return None, None, None  # nobody has reached the due time yet: S(1) is not identified
    if survival in (0.0, 1.0):
        # Greenwood's variance is 0 here; fall back on a Wilson interval over the exceptions
        # whose side of the due time is known (resolved in time, or open or resolved past it).
        known = int((resolved & (times <= 1.0)).sum() + (times > 1.0).sum())
        low, high = wilson_interval(round(survival * known), known)
        return survival, low, high
    log_s = math.log(survival)
    half = Z95 * math.sqrt(greenwood) / abs(log_s)
    centre = math.log(-log_s)
    return survival, math.exp(-math.exp(centre + half)), math.exp(-math.exp(centre - half))


def resolution_table(frame: pd.DataFrame, by: str, now: pd.Timestamp) -> pd.DataFrame:
    """Kaplan–Meier resolution time and SLA breach rate per group, plus an `all` row.

    :param frame: exceptions (see `with_durations`) with a column named by `by`
    :param by: kind, severity or site
    :param now: censoring time for open exceptions
    """
    if by not in GROUPINGS:
        raise ValueError(f"by must be one of {', '.join(GROUPINGS)}")
    _check(frame, (*EXCEPTION_COLUMNS, by))
    data = with_durations(frame, now)
    groups: list[tuple[Hashable, pd.DataFrame]] = list(data.groupby(by, sort=True))
    rows = [_row(str(key), group) for key, group in groups]
    rows.append(_row("all", data))
    return pd.DataFrame(rows, columns=list(RESOLUTION_COLUMNS))


def _row(key: str, group: pd.DataFrame) -> dict[str, object]:
    """One table row from one group's durations."""
    n = len(group)
    resolved = int(group["resolved"].sum())
    rate, low, high = sla_breach(group["sla_units"].to_numpy(float), group["resolved"].to_numpy(int))
    return {
        "key": key,
        "n": n,
        "resolved": resolved,
        "censored": n - resolved,
        **_km_quantiles(group["hours"].to_numpy(float), group["resolved"].to_numpy(int)),
        "sla_breach_rate": rate,
        "sla_breach_ci_low": low,
        "sla_breach_ci_high": high,
        "sla_known_breaches": int(group["breached"].sum()),
    }


def survival_curves(frame: pd.DataFrame, by: str, now: pd.Timestamp) -> pd.DataFrame:
    """Step points of the Kaplan–Meier curve of 'still unresolved' per group.

    Columns: key, hours, survival; each curve starts at (0, 1) and ends at its last time,
    whether that is a resolution or a censored exception.

    :param frame: exceptions (see `with_durations`)
    :param by: kind, severity or site
    :param now: censoring time for open exceptions
    """
    _check(frame, (*EXCEPTION_COLUMNS, by))
    data = with_durations(frame, now)
    parts = []
    for key, group in data.groupby(by, sort=True):
        hours = group["hours"].to_numpy(float)
        events = group["resolved"].to_numpy(int)
        times, probs = [0.0], [1.0]
        if events.sum():
            survival = SurvfuncRight(hours, events)
            times += list(survival.surv_times)
            probs += list(survival.surv_prob)
        if hours.max() > times[-1]:
            times.append(float(hours.max()))
            probs.append(probs[-1])
        parts.append(pd.DataFrame({"key": str(key), "hours": times, "survival": probs}))
    if not parts:
        return pd.DataFrame(
            {"key": pd.Series(dtype=str), "hours": pd.Series(dtype=float), "survival": pd.Series(dtype=float)}
        )
    return pd.concat(parts, ignore_index=True)


def handling_times(buckets: pd.DataFrame, by: str) -> pd.DataFrame:
    """Seconds from opening a case to deciding it: n, median and 90th percentile per group and overall.

    :param buckets: columns `by`, bucket (round(ln seconds * 20), so about 5% wide) and decisions
    :param by: the grouping column (e.g. site)
    """
    _check(buckets, (by, "bucket", "decisions"))
    rows = []
    for key, group in [*buckets.groupby(by, sort=True), ("all", buckets)]:
        counts = group.groupby("bucket")["decisions"].sum().sort_index()
        n = int(counts.sum())
        cumulative = counts.cumsum().to_numpy()
        quantile = {
            q: float(np.exp(counts.index[np.searchsorted(cumulative, q * n)] / BUCKETS_PER_E)) if n else None
            for q in (0.5, 0.9)
        }
        rows.append({"key": str(key), "n": n, "median_seconds": quantile[0.5], "p90_seconds": quantile[0.9]})
    return pd.DataFrame(rows, columns=["key", "n", "median_seconds", "p90_seconds"])
