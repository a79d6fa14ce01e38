"""Confidence sequences: valid at every look, checked by simulation and by independent integration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate, stats
from scipy.special import logsumexp
from statsmodels.stats.proportion import proportion_confint

from analytics.sequential import (
    AT_LEAST,
    AT_MOST,
    COLLECT,
    GO,
    KILL,
    judge,
    log_mixture_martingale,
    mean_interval,
    median_interval,
    mixture_radius,
    overall,
    rate_interval,
    rate_sequence,
)

ALPHA = 0.05
LOOKS = 100
EVERY = 20  # a look after every 20 decisions: 100 looks over 2,000


def ever_crossed(low: np.ndarray, high: np.ndarray, truth: float) -> np.ndarray:
    """Per simulated pilot (rows), whether any look's interval (columns) missed the truth."""
    return ((low > truth) | (high < truth)).any(axis=1)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_under_the_null_the_sequence_crosses_in_100_looks_at_most_alpha_of_the_time(p):
    rng = np.random.default_rng(int(p * 1000))
    runs = 2000
    draws = rng.random((runs, LOOKS * EVERY)) < p
    successes = draws.cumsum(axis=1)[:, EVERY - 1 :: EVERY]
    n = np.broadcast_to(np.arange(EVERY, LOOKS * EVERY + 1, EVERY), successes.shape)
    low, high = rate_sequence(successes, n, ALPHA)
    sequential = ever_crossed(low, high, p).mean()
    naive_low, naive_high = proportion_confint(successes, n, alpha=ALPHA, method="wilson")
    naive = ever_crossed(np.asarray(naive_low), np.asarray(naive_high), p).mean()
    assert sequential <= ALPHA, sequential
    # For contrast: the fixed-n interval read at every look misses far more often than alpha.
    assert naive > 2 * ALPHA, naive
    # And at a single look the fixed-n interval is about right, so the excess is the peeking.
    assert abs(((naive_low[:, -1] > p) | (naive_high[:, -1] < p)).mean() - ALPHA) < 0.025


def test_a_false_kill_or_go_is_as_rare_when_judged_every_look():
    """Override rate exactly at its limit: neither go nor kill may be called at any of 100 looks, beyond alpha."""
    rng = np.random.default_rng(7)
    runs, limit = 2000, 0.2
    draws = rng.random((runs, LOOKS * EVERY)) < limit
    successes = draws.cumsum(axis=1)[:, EVERY - 1 :: EVERY]
    n = np.broadcast_to(np.arange(EVERY, LOOKS * EVERY + 1, EVERY), successes.shape)
    low, high = rate_sequence(successes, n, ALPHA)
    called = np.zeros(runs, dtype=bool)
    for look in range(LOOKS):
        for run in np.flatnonzero(~called):
            status = judge(AT_MOST, limit, low[run, look], high[run, look], int(n[run, look]), 100).status
            called[run] |= status != COLLECT
    assert called.mean() <= ALPHA


def test_the_interval_ends_are_where_the_mixture_reaches_one_over_alpha_by_independent_integration():
    """M_n(p) = integral over q of (q/p)^s ((1-q)/(1-p))^(n-s) under a uniform prior, by quadrature."""
    for s, n in [(3, 20), (30, 100), (71, 250)]:
        low, high = rate_interval(s, n, ALPHA)
        for p in (low, high):

            def ratio(q, p=p, s=s, n=n):
                return math.exp(s * math.log(q / p) + (n - s) * math.log((1 - q) / (1 - p)))

            value, _ = integrate.quad(ratio, 0, 1, points=[s / n], limit=200)
            assert value == pytest.approx(1 / ALPHA, rel=1e-6)
        # Inside the interval the mixture is below 1/alpha (at the observed rate it is at most 1).
        assert math.exp(float(log_mixture_martingale(s, n, s / n))) < 1 / ALPHA


def test_the_mixture_has_mean_one_under_the_truth():
    """E[M_n(p)] = 1 when p is true (the martingale's start), summed exactly over the binomial's outcomes."""
    for p, n in [(0.3, 40), (0.05, 200), (0.7, 1000)]:
        k = np.arange(n + 1)
        exact = math.exp(float(logsumexp(stats.binom.logpmf(k, n, p) + log_mixture_martingale(k, n, p))))
        assert exact == pytest.approx(1.0, rel=1e-9)
    # Against a wrong rate the mixture grows: its mean under the truth is far above one.
    k = np.arange(201)
    assert float(logsumexp(stats.binom.logpmf(k, 200, 0.3) + log_mixture_martingale(k, 200, 0.2))) > math.log(100)


def test_the_sequence_is_wider_than_the_fixed_n_interval_and_shrinks():
    widths = []
    for n in (50, 500, 5000):
        low, high = rate_interval(int(0.3 * n), n)
        w_low, w_high = proportion_confint(int(0.3 * n), n, alpha=ALPHA, method="wilson")
        assert low < w_low and high > w_high
        assert low < 0.3 < high
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]


def test_edges_of_the_rate_sequence():
    assert rate_interval(0, 0) == (0.0, 1.0)
    low, high = rate_interval(0, 30)
    assert low == 0.0 and 0 < high < 0.3
    low, high = rate_interval(30, 30)
    assert high == 1.0 and 0.7 < low < 1
    with pytest.raises(ValueError, match="between 0 and n"):
        rate_interval(5, 3)


def test_the_normal_mixture_radius_matches_its_integral():
    """At the boundary, the integral over lambda ~ N(0, 1/rho) of exp(lambda S - lambda^2 V / 2) is 1/alpha."""
    target = 500
    log_term = -2 * math.log(ALPHA) + math.log(1 - 2 * math.log(ALPHA))
    rho = target / log_term
    for n in (30, 500, 4000):
        s = mixture_radius(n, ALPHA, target) * math.sqrt(n)

        def integrand(lam, s=s, n=n):
            return math.exp(lam * s - lam**2 * n / 2) * stats.norm.pdf(lam, scale=1 / math.sqrt(rho))

        value, _ = integrate.quad(integrand, -np.inf, np.inf)
        assert value == pytest.approx(1 / ALPHA, rel=1e-6)
    assert mixture_radius(500) > stats.norm.ppf(1 - ALPHA / 2)


def test_the_mean_sequence_is_valid_in_100_looks_on_gaussian_data():
    rng = np.random.default_rng(11)
    runs = 2000
    x = rng.normal(0.0, 2.0, size=(runs, LOOKS * EVERY))
    missed = np.zeros(runs, dtype=bool)
    for look in range(1, LOOKS + 1):
        chunk = x[:, : look * EVERY]
        n = chunk.shape[1]
        se = chunk.std(axis=1, ddof=1) / math.sqrt(n)
        low, high = mean_interval(chunk.mean(axis=1), se, n)
        missed |= (low > 0) | (high < 0)
    assert missed.mean() <= ALPHA


def test_the_median_interval_covers_the_median_at_every_look():
    rng = np.random.default_rng(5)
    runs, truth = 400, math.log(2) * 30  # exponential with mean 30 seconds has median 30 ln 2
    missed = 0
    for _ in range(runs):
        times = rng.exponential(30, size=1000)
        for n in range(50, 1001, 50):
            low, high = median_interval(times[:n])
            if low is None or high is None or not low <= truth <= high:
                missed += 1
                break
    assert missed / runs <= ALPHA
    assert median_interval([]) == (None, None)
    low, high = median_interval(list(range(1, 101)))
    assert low is not None and high is not None and low < 50.5 < high


def test_judge_and_overall():
    assert judge(AT_LEAST, 0.8, 0.82, 0.9, 500, 100).status == GO
    assert judge(AT_LEAST, 0.8, 0.6, 0.79, 500, 100).status == KILL
    assert judge(AT_LEAST, 0.8, 0.75, 0.85, 500, 100).status == COLLECT
    assert judge(AT_MOST, 0.2, 0.1, 0.19, 500, 100).status == GO
    assert judge(AT_MOST, 0.2, 0.21, 0.3, 500, 100).status == KILL
    assert judge(AT_MOST, 0.2, 0.21, 0.3, 50, 100).status == COLLECT
    assert judge(AT_MOST, 0.2, None, None, 500, 0).status == COLLECT
    with pytest.raises(ValueError):
        judge("sideways", 0.2, 0.1, 0.3, 500, 0)
    assert overall([GO, GO]) == GO
    assert overall([GO, COLLECT]) == COLLECT
    assert overall([GO, KILL, COLLECT]) == KILL
    assert overall([]) == COLLECT
