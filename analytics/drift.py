"""Drift of one distribution between a reference and a current window, from binned counts.

The methods follow Evidently's defaults. Numeric values: the Wasserstein distance normalised by
the reference's standard deviation, with a two-sample Kolmogorov–Smirnov test; categories: the
Jensen–Shannon distance, with a chi-square test. A reference of at most `SMALL_SAMPLE` values is
judged by the test (drift when p < `ALPHA`), a larger one by the distance (drift when it is at
least `DISTANCE_THRESHOLD`): on large samples every test finds some difference, the distance says
whether it is big enough to matter. A numeric feature with at most 5 distinct bins is compared as
categories, as Evidently does.

Nothing here sees the raw values. Numbers are counted in fixed log-spaced bins: `BINS_PER_E` per
factor of e (each about 2.5% wide), mirrored for negatives, one bin for |x| < `TINY`. The bins are
the same for every feature and every version, forever, so any two windows can be compared. Each
bin keeps its count and the sum of its values. The Wasserstein distance treats each bin as a
point mass at its mean (error at most half a bin's width per value, under 1.3% of |x|); the KS
statistic is the largest CDF gap at the bin edges, where it can only be read, so it is at most the
raw statistic, and below it by at most the mass of one bin. Its p-value is Kolmogorov's two-sample
distribution at the effective size n·m/(n+m) (scipy's asymptotic method).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

BINS_PER_E = 40
TINY = 1e-9  # |x| below this counts as 0
HUGE = 1e15  # |x| above this counts as 1e15
OFFSET = 1000  # keeps every non-zero bin's index away from 0 (the bin of 0)
SMALL_SAMPLE = 1000  # Evidently's cut: tests up to this many reference values, distances above
ALPHA = 0.05
DISTANCE_THRESHOLD = 0.1
MIN_STD = 0.001  # Evidently's floor on the reference std that normalises the Wasserstein distance
FEW_BINS = 5  # numeric features with at most this many distinct bins are compared as categories
METHODS = ("ks", "wasserstein", "chisquare", "jensenshannon")


def numeric_bin(x: float) -> int:
    """The fixed bin of a finite number: 0 near zero, else ±(OFFSET + floor(ln|x| · BINS_PER_E)), monotone in x."""
    size = abs(x)
    if size < TINY:
        return 0
    index = OFFSET + math.floor(math.log(min(size, HUGE)) * BINS_PER_E)
    return index if x > 0 else -index


@dataclass(frozen=True)
class Drift:
    """The comparison of one feature: which method judged it, its statistic, and whether it drifted."""

    kind: str  # numeric | categorical: how the values were stored
    method: str  # ks | wasserstein | chisquare | jensenshannon: what decided `drifted`
    statistic: float | None  # D, normalised Wasserstein, chi-square, or JS distance; None without data
    p_value: float | None  # of the test (KS or chi-square), reported with distances too
    threshold: float  # ALPHA for tests (drift when p < it), the distance threshold for distances
    drifted: bool
    n_reference: int
    n_current: int


def _aligned(reference: pd.DataFrame, current: pd.DataFrame) -> pd.DataFrame:
    """One row per key seen in either window: ref and cur counts and sums, sorted by key.

    In numpy, not a pandas merge: the page compares each day of a window, and this runs for each.
    """
    keys = np.concatenate([reference["key"].to_numpy(), current["key"].to_numpy()])
    unique, where = np.unique(keys, return_inverse=True)
    split = len(reference)

    def summed(frame: pd.DataFrame, column: str, index: np.ndarray) -> np.ndarray:
        weights = frame[column].to_numpy(float) if column in frame else np.zeros(len(frame))
        return np.bincount(index, weights=weights, minlength=len(unique))

    ref_index, cur_index = where[:split], where[split:]
    table = pd.DataFrame(
        {
            "key": unique,
            "count_ref": summed(reference, "count", ref_index),
            "total_ref": summed(reference, "total", ref_index),
            "count_cur": summed(current, "count", cur_index),
            "total_cur": summed(current, "total", cur_index),
        }
    )
    return table[(table["count_ref"] > 0) | (table["count_cur"] > 0)].reset_index(drop=True)


def binned_ks(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """KS statistic and p-value from counts in the same ordered bins."""
    n, m = float(ref_counts.sum()), float(cur_counts.sum())
    d = float(np.max(np.abs(np.cumsum(ref_counts) / n - np.cumsum(cur_counts) / m)))
    return d, float(stats.kstwo.sf(d, round(n * m / (n + m))))


def binned_wasserstein(
    ref_means: np.ndarray, ref_counts: np.ndarray, cur_means: np.ndarray, cur_counts: np.ndarray
) -> float:
    """Wasserstein distance between the binned distributions, divided by the reference std (at least MIN_STD)."""
    ref_mean = np.average(ref_means, weights=ref_counts)
    std = math.sqrt(float(np.average((ref_means - ref_mean) ** 2, weights=ref_counts)))
    distance = stats.wasserstein_distance(ref_means, cur_means, ref_counts, cur_counts)
    return float(distance) / max(std, MIN_STD)


def categorical_stats(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float, float]:
    """Chi-square statistic and p-value of homogeneity (reference vs current), and the Jensen–Shannon distance."""
    js = float(jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum()))
    if len(ref_counts) < 2:
        return 0.0, 1.0, js
    chi2, p, _, _ = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]))
    return float(chi2), float(p), js


@dataclass(frozen=True)
class _Measures:
    """Both measures of one comparison: the test's statistic and p-value, and the distance."""

    as_numbers: bool
    test: float
    p_value: float
    distance: float


def _measure(table: pd.DataFrame, as_numbers: bool) -> _Measures:
    """The test and the distance of aligned counts (both windows non-empty)."""
    ref, cur = table["count_ref"].to_numpy(float), table["count_cur"].to_numpy(float)
    if not as_numbers:
        chi2, p, js = categorical_stats(ref, cur)
        return _Measures(False, chi2, p, js)
    d, p = binned_ks(ref, cur)
    keep_r, keep_c = ref > 0, cur > 0
    ref_means = table["total_ref"].to_numpy(float)[keep_r] / ref[keep_r]
    cur_means = table["total_cur"].to_numpy(float)[keep_c] / cur[keep_c]
    return _Measures(True, d, p, binned_wasserstein(ref_means, ref[keep_r], cur_means, cur[keep_c]))


def _drift(kind: str, n_ref: int, n_cur: int, m: _Measures | None, distance_threshold: float) -> Drift:
    """The verdict: by the test when either window is small, else by the distance."""
    small = min(n_ref, n_cur) <= SMALL_SAMPLE
    as_numbers = m.as_numbers if m else kind == "numeric"
    names = ("ks", "wasserstein") if as_numbers else ("chisquare", "jensenshannon")
    method, threshold = (names[0], ALPHA) if small else (names[1], distance_threshold)
    if m is None:
        return Drift(kind, method, None, None, threshold, False, n_ref, n_cur)
    statistic = m.test if small else m.distance
    drifted = m.p_value < threshold if small else statistic >= threshold
    return Drift(kind, method, statistic, m.p_value, threshold, bool(drifted), n_ref, n_cur)


def compare(
    reference: pd.DataFrame, current: pd.DataFrame, kind: str, *, distance_threshold: float = DISTANCE_THRESHOLD
) -> Drift:
    """Drift of one feature from its binned counts in two windows (columns key, count, and total for numbers).

    Numeric keys are bin indices (`numeric_bin`), categorical keys the values as text.
    """
    table = _aligned(reference, current)
    n_ref, n_cur = int(table["count_ref"].sum()), int(table["count_cur"].sum())
    as_numbers = kind == "numeric" and len(table) > FEW_BINS
    m = _measure(table, as_numbers) if n_ref and n_cur else None
    return _drift(kind, n_ref, n_cur, m, distance_threshold)


def daily(
    reference: pd.DataFrame, current: pd.DataFrame, kind: str, *, distance_threshold: float = DISTANCE_THRESHOLD
) -> pd.DataFrame:
    """Each current day (column `day`) against the whole reference: its distance, test p-value and verdict.

    The distance is shown every day (a chart needs one scale) even where the verdict is the test's.
    """
    rows = []
    for day, part in current.groupby("day", sort=True):
        table = _aligned(reference, part)
        n_ref, n_cur = int(table["count_ref"].sum()), int(table["count_cur"].sum())
        m = _measure(table, kind == "numeric" and len(table) > FEW_BINS) if n_ref and n_cur else None
        verdict = _drift(kind, n_ref, n_cur, m, distance_threshold)
        rows.append(
            {
                "day": day,
                "distance": m.distance if m else None,
                "p_value": verdict.p_value,
                "method": verdict.method,
                "drifted": verdict.drifted,
                "n_current": n_cur,
            }
        )
    return pd.DataFrame(rows, columns=["day", "distance", "p_value", "method", "drifted", "n_current"])


def binned(values: np.ndarray) -> pd.DataFrame:
    """Raw numbers counted into their bins (key, count, total): what ingest stores, for tests and the bench."""
    keys = [numeric_bin(float(v)) for v in values]
    frame = pd.DataFrame({"key": keys, "count": 1, "total": values})
    return frame.groupby("key", as_index=False).sum()
