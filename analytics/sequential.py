"""Anytime-valid confidence sequences: intervals that may be looked at after every observation.

A fixed-n interval covers the truth with probability 1 - alpha at one pre-set sample size; read
every day, one of the days will miss far more often than alpha. A confidence sequence covers it
at every n at once: P(there is an n whose interval misses) <= alpha. That is what lets a
readiness plan be evaluated continuously without inflating false go or kill calls.

- Rates (0/1 data): Robbins' beta-binomial mixture, as in Howard, Ramdas, McAuliffe & Sekhon
  (2021), "Time-uniform, nonparametric, nonasymptotic confidence sequences", Ann. Statist. 49(2),
  section 3. For each candidate rate p, M_n(p) = integral of the likelihood ratio q / p over a
  Beta(a, b) prior on q is a nonnegative martingale with M_0 = 1 when p is true, so by Ville's
  inequality it ever reaches 1 / alpha with probability at most alpha. The sequence is every p
  with M_n(p) < 1 / alpha. It depends on the counts only, so SQL aggregates suffice.
- Medians: a rate's sequence inverted (is the share of times at or below m compatible with 1/2?).
- Means with an estimated standard error (an experiment's effect): the two-sided normal-mixture
  boundary (Howard et al. 2021, section 3) with the variance estimated, i.e. the asymptotic
  confidence sequence of Waudby-Smith, Arbour, Sinha, Kennedy & Ramdas (2021).
- `judge` turns an interval into go, kill or keep collecting against a threshold.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.special import betaln

ALPHA = 0.05
GO, KILL, COLLECT = "go", "kill", "keep_collecting"
AT_LEAST, AT_MOST = "at_least", "at_most"
_BISECTIONS = 60  # halves [0, 1] down to 1e-18, below float resolution


def log_mixture_martingale(
    successes: np.ndarray | int, n: np.ndarray | int, p: np.ndarray | float, a: float = 1.0, b: float = 1.0
) -> np.ndarray:
    """log M_n(p): the Beta(a, b) mixture of likelihood ratios against the rate p (vectorised).

    :param successes: events so far
    :param n: trials so far
    :param p: the rate tested, strictly between 0 and 1
    :param a: prior's first shape
    :param b: prior's second shape
    """
    s = np.asarray(successes, dtype=float)
    t = np.asarray(n, dtype=float)
    q = np.asarray(p, dtype=float)
    marginal = betaln(s + a, t - s + b) - betaln(a, b)
    # xlogy-style: 0 * log(0) is 0 when there are no successes (or no failures).
    log_p = np.where(s > 0, s * np.log(np.clip(q, 1e-300, 1.0)), 0.0)
    log_q = np.where(t - s > 0, (t - s) * np.log(np.clip(1.0 - q, 1e-300, 1.0)), 0.0)
    return np.asarray(marginal - log_p - log_q)


def rate_sequence(
    successes: np.ndarray | int, n: np.ndarray | int, alpha: float = ALPHA, a: float = 1.0, b: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """The confidence sequence's interval for a rate after `successes` of `n` (vectorised; [0, 1] when n is 0).

    log M_n(p) is convex in p with its minimum (at most 0) at the observed rate, so the set
    {p : log M_n(p) < log(1 / alpha)} is an interval; each end is found by bisection.
    """
    s = np.asarray(successes, dtype=float)
    t = np.asarray(n, dtype=float)
    if np.any(s < 0) or np.any(s > t):
        raise ValueError("successes must be between 0 and n")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be between 0 and 1")
    level = math.log(1 / alpha)
    centre = np.divide(s, t, out=np.full_like(s, 0.5), where=t > 0)

    def edge(outside: np.ndarray) -> np.ndarray:
        inside = centre.copy()
        out = outside.copy()
        # An end at 0 or 1 itself: the sequence reaches the boundary when M_n stays below 1/alpha there.
        reaches = log_mixture_martingale(s, t, np.clip(out, 1e-15, 1 - 1e-15), a, b) < level
        for _ in range(_BISECTIONS):
            middle = (inside + out) / 2
            crossed = log_mixture_martingale(s, t, middle, a, b) >= level
            out = np.where(crossed, middle, out)
            inside = np.where(crossed, inside, middle)
        return np.where(reaches, outside, (inside + out) / 2)

    low = edge(np.zeros_like(centre))
    high = edge(np.ones_like(centre))
    return low, high


def rate_interval(successes: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """The confidence sequence's interval for one rate, as plain floats."""
    low, high = rate_sequence(successes, n, alpha)
    return float(low), float(high)


def median_ranks(n: int, alpha: float = ALPHA) -> tuple[int | None, int | None]:
    """The 0-based ranks, among n sorted values, of the ends of an anytime-valid interval for the median.

    The true median m has P(X <= m) = 1/2, so m lies outside the interval only if 1/2 falls
    outside the rate sequence for k = the count of values at or below m: coverage is the rate
    sequence's. Every m in [x_(k), x_(k+1)) has that count k, so the interval runs from the
    order statistic of the smallest k admitting 1/2 to the one after the largest. None: the
    interval is open on that side (too few values).
    """
    if n <= 0:
        return None, None
    counts = np.arange(n + 1)
    admits = np.flatnonzero(log_mixture_martingale(counts, n, 0.5) < math.log(1 / alpha))
    first, last = int(admits[0]), int(admits[-1])
    return (first - 1 if first > 0 else None), (last if last < n else None)


def median_interval(values: Sequence[float], alpha: float = ALPHA) -> tuple[float | None, float | None]:
    """An anytime-valid interval for the median of `values` (see `median_ranks`)."""
    ordered = np.sort(np.asarray(values, dtype=float))
    low, high = median_ranks(len(ordered), alpha)
    return (
        None if low is None else float(ordered[low]),
        None if high is None else float(ordered[high]),
    )


def mixture_radius(n: int, alpha: float = ALPHA, target_n: int = 500) -> float:
    """Half-width of the normal-mixture sequence in standard errors, after n observations.

    Two-sided normal mixture with precision rho: |S_n| < sqrt((V + rho) log((V + rho) / (rho alpha^2)))
    for V = n sigma^2. Dividing by sqrt(V) gives the radius in standard errors of the mean. rho is
    tuned to be tightest near `target_n` (the choice of rho in Howard et al. 2021).
    """
    if n <= 0:
        return math.inf
    log_term = -2 * math.log(alpha) + math.log(1 - 2 * math.log(alpha))
    rho = target_n / log_term  # on the scale V = n (unit variance)
    v = float(n)
    return math.sqrt((v + rho) / v * math.log((v + rho) / (rho * alpha**2)))


def mean_interval(estimate: float, se: float, n: int, alpha: float = ALPHA, target_n: int = 500) -> tuple[float, float]:
    """Asymptotic confidence sequence for a mean (or a difference of means) from its estimate and standard error."""
    radius = mixture_radius(n, alpha, target_n) * se
    return estimate - radius, estimate + radius


@dataclass(frozen=True)
class Judgement:
    """One criterion's reading: go, kill or keep collecting, and why in a few words."""

    status: str
    reason: str


def judge(direction: str, threshold: float, low: float | None, high: float | None, n: int, min_n: int) -> Judgement:
    """Go when the whole interval is on the wanted side of the threshold, kill when it is wholly on the other.

    "at_least" is judged on the lower bound for go and the upper bound for kill; "at_most" the
    reverse. Below the plan's minimum sample neither call is made.
    """
    if direction not in (AT_LEAST, AT_MOST):
        raise ValueError(f"unknown direction {direction!r}")
    if n < min_n:
        return Judgement(COLLECT, f"{n:,} of the {min_n:,} needed")
    if low is None or high is None:
        return Judgement(COLLECT, "no interval yet")
    wanted_low, wanted_high = (low, high) if direction == AT_LEAST else (-high, -low)
    limit = threshold if direction == AT_LEAST else -threshold
    if wanted_low >= limit:
        return Judgement(GO, "the whole interval meets the threshold")
    if wanted_high < limit:
        return Judgement(KILL, "the whole interval misses the threshold")
    return Judgement(COLLECT, "the interval still straddles the threshold")


def overall(statuses: Sequence[str]) -> str:
    """The plan's verdict: kill if any criterion kills, go if every one goes, else keep collecting."""
    if KILL in statuses:
        return KILL
    if statuses and all(s == GO for s in statuses):
        return GO
    return COLLECT
