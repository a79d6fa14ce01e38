"""Override rates, comparisons, accuracy against outcomes and control charts: pure functions on DataFrames."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize, stats
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
    """Newcombe's interval for rate_a - rate_b, and the p-value of the test that interval inverts.

    A pooled z-test beside a Newcombe interval can disagree near p = 0.05 (a significant test
    with an interval that spans 0, or the reverse). The p-value here is the smallest alpha at
    which Newcombe's (1 - alpha) interval excludes 0, so "p < 0.05" and "the 95% interval
    excludes 0" are always the same statement. `z` is the normal quantile of that p-value,
    signed like the difference.

    :param a: label of the first group
    :param overrides_a: overrides in the first group
    :param judged_a: accepts + overrides in the first group
    """
    if min(judged_a, judged_b) == 0:
        raise ValueError("both groups need at least one accepted or overridden decision")
    p_a, p_b = overrides_a / judged_a, overrides_b / judged_b
    low, high = _newcombe(overrides_a, judged_a, overrides_b, judged_b, 0.05)
    p_value = _newcombe_p_value(overrides_a, judged_a, overrides_b, judged_b)
    z = math.copysign(float(stats.norm.isf(p_value / 2)), p_a - p_b) if p_value < 1 else 0.0
    return Comparison(a, b, p_a, p_b, p_a - p_b, low, high, z, p_value)


def _newcombe(k_a: int, n_a: int, k_b: int, n_b: int, alpha: float) -> tuple[float, float]:
    """Newcombe's hybrid score interval for a difference of proportions at level 1 - alpha."""
    low, high = confint_proportions_2indep(k_a, n_a, k_b, n_b, method="newcomb", compare="diff", alpha=alpha)
    return float(low), float(high)


def _newcombe_p_value(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """The smallest alpha whose Newcombe interval excludes 0 (1 when the rates are equal)."""
    if k_a * n_b == k_b * n_a:
        return 1.0

    def margin(alpha: float) -> float:
        """How far the interval's bound nearest 0 stays from it (positive: 0 excluded)."""
        low, high = _newcombe(k_a, n_a, k_b, n_b, alpha)
        return low if k_a * n_b > k_b * n_a else -high

    tiny = 1e-300
    if margin(tiny) > 0:
        return tiny  # excluded even at the widest interval floating point can express
    return float(optimize.brentq(margin, tiny, 1.0 - 1e-12, xtol=1e-15, rtol=1e-12))


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
    """Per reviewer: decisions, accept share, override and escalation rates, median seconds to decide.

    The override rate follows the one definition, overrides / (accepts + overrides), with its
    Wilson interval; escalations stand beside it as a share of all decisions. The accept share
    (accepts / decisions, with its interval) is what rubber-stamping shows up in.

    :param buckets: columns reviewer, bucket (round(ln seconds * 20)), decisions, accepts, overrides
    """
    _check(buckets, ("reviewer", "bucket", "decisions", "accepts", "overrides"))
    rows = []
    for reviewer, group in buckets.sort_values(["reviewer", "bucket"]).groupby("reviewer", sort=True):
        total = int(group["decisions"].sum())
        accepts = int(group["accepts"].sum())
        overrides = int(group["overrides"].sum())
        escalations = total - accepts - overrides
        cumulative = group["decisions"].cumsum().to_numpy()
        median_bucket = group["bucket"].to_numpy()[np.searchsorted(cumulative, total / 2)]
        accept_low, accept_high = wilson_interval(accepts, total)
        override_low, override_high = wilson_interval(overrides, accepts + overrides)
        rows.append(
            {
                "reviewer": reviewer,
                "decisions": total,
                "accept_rate": accepts / total,
                "accept_ci_low": accept_low,
                "accept_ci_high": accept_high,
                "override_rate": overrides / (accepts + overrides) if accepts + overrides else None,
                "override_ci_low": override_low,
                "override_ci_high": override_high,
                "escalations": escalations,
                "escalation_rate": escalations / total,
                "median_seconds": float(math.exp(median_bucket / BUCKETS_PER_E)),
            }
        )
    return pd.DataFrame(rows, columns=REVIEWER_COLUMNS)


REVIEWER_COLUMNS = [
    "reviewer",
    "decisions",
    "accept_rate",
    "accept_ci_low",
    "accept_ci_high",
    "override_rate",
    "override_ci_low",
    "override_ci_high",
    "escalations",
    "escalation_rate",
    "median_seconds",
]
