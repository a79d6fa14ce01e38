"""Override rates, comparisons, accuracy against outcomes and control charts: pure functions on DataFrames."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep

from analytics.rates import wilson_interval

COUNT_COLUMNS = ("key", "decisions", "accepts", "overrides", "escalations")
BUCKETS_PER_E = 20  # reviewer_speed buckets: round(ln(seconds) * 20)


def _check(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    """Fail clearly when a frame lacks the columns an analytic needs."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")


def with_rates(counts: pd.DataFrame) -> pd.DataFrame:
    """Add override_rate = overrides / (accepts + overrides) with its Wilson 95% interval, and escalation_rate.

    :param counts: columns key, decisions, accepts, overrides, escalations
    """
    _check(counts, COUNT_COLUMNS)
    out = counts.copy()
    rates, lows, highs, escalation = [], [], [], []
    for row in out.itertuples(index=False):
        judged = int(row.accepts) + int(row.overrides)
        low, high = wilson_interval(int(row.overrides), judged)
        rates.append(row.overrides / judged if judged else None)
        lows.append(low)
        highs.append(high)
        escalation.append(row.escalations / row.decisions if row.decisions else None)
    out["override_rate"], out["ci_low"], out["ci_high"], out["escalation_rate"] = rates, lows, highs, escalation
    return out


@dataclass(frozen=True)
class Comparison:
    """Two override rates compared: the difference with its interval, and a two-sided test."""

    a: str
    b: str
    rate_a: float
    rate_b: float
    difference: float
    ci_low: float
    ci_high: float
    z: float
    p_value: float


def compare_rates(a: str, overrides_a: int, judged_a: int, b: str, overrides_b: int, judged_b: int) -> Comparison:
    """Two-proportion z-test (pooled) and Newcombe's interval for rate_a - rate_b.

    :param a: label of the first group
    :param overrides_a: overrides in the first group
    :param judged_a: accepts + overrides in the first group
    """
    if min(judged_a, judged_b) == 0:
        raise ValueError("both groups need at least one accepted or overridden decision")
    p_a, p_b = overrides_a / judged_a, overrides_b / judged_b
    pooled = (overrides_a + overrides_b) / (judged_a + judged_b)
    se = math.sqrt(pooled * (1 - pooled) * (1 / judged_a + 1 / judged_b))
    z = (p_a - p_b) / se if se > 0 else 0.0
    low, high = confint_proportions_2indep(
        overrides_a, judged_a, overrides_b, judged_b, method="newcomb", compare="diff"
    )
    return Comparison(a, b, p_a, p_b, p_a - p_b, float(low), float(high), z, float(2 * stats.norm.sf(abs(z))))


def accuracy(counts: pd.DataFrame) -> pd.DataFrame:
    """AI and final-decision accuracy against outcomes, with Wilson intervals, and who was right on overrides.

    :param counts: columns with_outcome, ai_right, final_right, overrides, corrected, overrode_right (and key)
    """
    _check(counts, ("with_outcome", "ai_right", "final_right", "overrides", "corrected", "overrode_right"))
    out = counts.copy()
    for name, hits, total in (
        ("ai_accuracy", "ai_right", "with_outcome"),
        ("final_accuracy", "final_right", "with_outcome"),
        ("corrected_share", "corrected", "overrides"),
        ("overrode_right_share", "overrode_right", "overrides"),
    ):
        values, lows, highs = [], [], []
        for k, n in zip(out[hits], out[total], strict=True):
            low, high = wilson_interval(int(k), int(n))
            values.append(k / n if n else None)
            lows.append(low)
            highs.append(high)
        out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = values, lows, highs
    return out


def p_chart(daily: pd.DataFrame, baseline_periods: int = 14) -> pd.DataFrame:
    """A p-chart of the daily override rate per version, limits from each version's first periods.

    Flags a point beyond the 3-sigma limits, and the 8th and later points of a run on one side
    of the centre line.

    :param daily: columns version, day, accepts, overrides (one row per version and day, in day order)
    :param baseline_periods: how many of each version's first days set its centre line
    """
    _check(daily, ("version", "day", "accepts", "overrides"))
    if baseline_periods < 1:
        raise ValueError("baseline_periods must be at least 1")
    parts = []
    for version, group in daily.sort_values(["version", "day"]).groupby("version", sort=True):
        g = group.copy()
        g["n"] = g["accepts"] + g["overrides"]
        g = g[g["n"] > 0]
        if g.empty:
            continue
        g["p"] = g["overrides"] / g["n"]
        base = g.head(baseline_periods)
        centre = base["overrides"].sum() / base["n"].sum()
        sigma = np.sqrt(centre * (1 - centre) / g["n"])
        g["centre"] = centre
        g["ucl"] = np.minimum(centre + 3 * sigma, 1.0)
        g["lcl"] = np.maximum(centre - 3 * sigma, 0.0)
        g["beyond_limits"] = (g["p"] > g["ucl"]) | (g["p"] < g["lcl"])
        side = np.sign(g["p"] - centre).to_numpy()
        run, runs = 0, []
        for i, s in enumerate(side):
            run = run + 1 if i and s != 0 and s == side[i - 1] else (1 if s != 0 else 0)
            runs.append(run)
        g["run_of_8"] = np.array(runs) >= 8
        g["signal"] = g["beyond_limits"] | g["run_of_8"]
        g["in_baseline"] = [i < baseline_periods for i in range(len(g))]
        g["version"] = version
        parts.append(g)
    columns = [
        "version",
        "day",
        "accepts",
        "overrides",
        "n",
        "p",
        "centre",
        "ucl",
        "lcl",
        "beyond_limits",
        "run_of_8",
        "signal",
        "in_baseline",
    ]
    return pd.concat(parts, ignore_index=True)[columns] if parts else pd.DataFrame(columns=columns)


def reviewer_table(buckets: pd.DataFrame) -> pd.DataFrame:
    """Per reviewer: decisions, accept rate (with interval), override rate and median seconds to decide.

    :param buckets: columns reviewer, bucket (round(ln seconds * 20)), decisions, accepts, overrides
    """
    _check(buckets, ("reviewer", "bucket", "decisions", "accepts", "overrides"))
    rows = []
    for reviewer, group in buckets.sort_values(["reviewer", "bucket"]).groupby("reviewer", sort=True):
        total = int(group["decisions"].sum())
        accepts = int(group["accepts"].sum())
        cumulative = group["decisions"].cumsum().to_numpy()
        median_bucket = group["bucket"].to_numpy()[np.searchsorted(cumulative, total / 2)]
        low, high = wilson_interval(accepts, total)
        rows.append(
            {
                "reviewer": reviewer,
                "decisions": total,
                "accept_rate": accepts / total,
                "accept_ci_low": low,
                "accept_ci_high": high,
                "override_rate": int(group["overrides"].sum()) / total,
                "median_seconds": float(math.exp(median_bucket / BUCKETS_PER_E)),
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "reviewer",
            "decisions",
            "accept_rate",
            "accept_ci_low",
            "accept_ci_high",
            "override_rate",
            "median_seconds",
        ],
    )
