"""Drift from binned counts against scipy on the raw samples, and its power and false alarms by simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.spatial.distance import jensenshannon

from analytics import drift

SAMPLERS = {
    "normal": lambda rng, n, shift: rng.normal(shift, 1.0, n),
    "lognormal": lambda rng, n, shift: rng.lognormal(4.5 + shift, 1.1, n),
    "exponential": lambda rng, n, shift: rng.exponential(1.0 + shift, n),
    "confidence": lambda rng, n, shift: np.clip(rng.beta(8 - 4 * shift, 3, n), 0, 1),
}


def categories(rng: np.random.Generator, n: int, weights: list[float]) -> pd.DataFrame:
    """n draws of four categories counted as the store keeps them."""
    names = np.array(["grocery", "travel", "electronics", "gambling"])
    drawn = rng.choice(names, size=n, p=np.array(weights) / sum(weights))
    keys, counts = np.unique(drawn, return_counts=True)
    return pd.DataFrame({"key": keys, "count": counts, "total": 0.0})


def test_bins_are_monotone_and_fine():
    values = np.concatenate([-np.logspace(-12, 16, 4000)[::-1], [0.0], np.logspace(-12, 16, 4000)])
    keys = [drift.numeric_bin(v) for v in values]
    assert keys == sorted(keys)
    assert drift.numeric_bin(1e-10) == drift.numeric_bin(0.0) == 0
    assert drift.numeric_bin(1e20) == drift.numeric_bin(1e15)
    # Every bin is narrower than 2.6% of its values.
    assert drift.numeric_bin(100.0) != drift.numeric_bin(102.6)


@pytest.mark.parametrize("shape", sorted(SAMPLERS))
@pytest.mark.parametrize("shift", [0.0, 0.1, 0.5])
def test_binned_statistics_match_scipy_on_raw_samples(shape, shift):
    """KS D within 0.01, Wasserstein/std within 0.01 + 2%; the KS p-value gives the same verdict at 5%.

    The p-value is a steep function of D in mid-range (D off by 0.005 moves it by 0.1), so it is held to
    0.15 and to the same verdict unless scipy's own p is within 0.02 of 5%.
    """
    rng = np.random.default_rng([sorted(SAMPLERS).index(shape), int(shift * 10)])
    ref, cur = SAMPLERS[shape](rng, 3000, 0.0), SAMPLERS[shape](rng, 2000, shift)
    table = drift._aligned(drift.binned(ref), drift.binned(cur))
    rc, cc = table["count_ref"].to_numpy(float), table["count_cur"].to_numpy(float)
    d, p = drift.binned_ks(rc, cc)
    raw = stats.ks_2samp(ref, cur, method="asymp")
    assert d == pytest.approx(raw.statistic, abs=0.01)
    assert d <= raw.statistic + 1e-12  # read at the bin edges only: never above the raw statistic
    assert p == pytest.approx(raw.pvalue, abs=0.15)
    assert (p < 0.05) == (raw.pvalue < 0.05) or abs(raw.pvalue - 0.05) < 0.02

    result = drift.compare(drift.binned(ref), drift.binned(cur), "numeric")
    assert result.method == "wasserstein"
    expected = stats.wasserstein_distance(ref, cur) / max(np.std(ref), drift.MIN_STD)
    assert result.statistic == pytest.approx(expected, abs=0.01, rel=0.02)
    assert (result.n_reference, result.n_current) == (3000, 2000)


def test_small_reference_uses_ks_with_p_close_to_exact():
    rng = np.random.default_rng(3)
    ref, cur = rng.normal(0, 1, 300), rng.normal(0.3, 1, 200)
    result = drift.compare(drift.binned(ref), drift.binned(cur), "numeric")
    exact = stats.ks_2samp(ref, cur)
    assert result.method == "ks" and result.threshold == drift.ALPHA
    assert result.statistic == pytest.approx(exact.statistic, abs=0.01)
    assert result.p_value == pytest.approx(exact.pvalue, abs=0.01)
    assert result.drifted == (result.p_value < 0.05)


def test_categorical_matches_scipy():
    rng = np.random.default_rng(5)
    ref, cur = categories(rng, 800, [4, 2, 2, 1]), categories(rng, 1600, [3, 2, 3, 2])
    small = drift.compare(ref, cur, "categorical")
    table = np.array([ref.set_index("key")["count"].sort_index(), cur.set_index("key")["count"].sort_index()])
    chi2, p, _, _ = stats.chi2_contingency(table)
    assert small.method == "chisquare"
    assert small.statistic == pytest.approx(chi2) and small.p_value == pytest.approx(p)

    big_ref = categories(rng, 5000, [4, 2, 2, 1])
    big = drift.compare(big_ref, cur, "categorical")  # both windows over 1000
    ordered = big_ref.set_index("key")["count"].sort_index()
    js = jensenshannon(ordered / ordered.sum(), table[1] / table[1].sum())
    assert big.method == "jensenshannon" and big.statistic == pytest.approx(js)
    assert big.threshold == 0.1


def test_category_only_in_one_window_and_empty_windows():
    ref = pd.DataFrame({"key": ["a", "b"], "count": [500, 500], "total": 0.0})
    cur = pd.DataFrame({"key": ["a", "c"], "count": [100, 100], "total": 0.0})
    result = drift.compare(ref, cur, "categorical")
    assert result.drifted and result.p_value < 1e-10
    empty = drift.compare(ref, cur.iloc[0:0], "categorical")
    assert empty.statistic is None and not empty.drifted and empty.n_current == 0


def test_few_distinct_numbers_are_compared_as_categories():
    ref = drift.binned(np.array([1.0, 2.0, 3.0] * 100))
    cur = drift.binned(np.array([1.0, 2.0, 3.0, 3.0] * 50))
    result = drift.compare(ref, cur, "numeric")
    assert result.kind == "numeric" and result.method == "chisquare"


@pytest.mark.parametrize("n_ref", [300, 5000])
def test_false_alarms_stay_near_alpha_and_clear_shifts_are_caught(n_ref):
    """200 simulations each: no shift flags at most ~alpha (tests) or ~never (distances); a clear shift nearly always.

    The flags are compared with scipy's own tests on the same raw samples.
    """
    rng = np.random.default_rng(n_ref)
    sims, alarms, scipy_alarms, caught = 200, 0, 0, 0
    for _ in range(sims):
        n_cur = 400 if n_ref <= drift.SMALL_SAMPLE else 3000
        ref, same, moved = rng.normal(10, 2, n_ref), rng.normal(10, 2, n_cur), rng.normal(10.8, 2, n_cur)
        binned_ref = drift.binned(ref)
        alarms += drift.compare(binned_ref, drift.binned(same), "numeric").drifted
        caught += drift.compare(binned_ref, drift.binned(moved), "numeric").drifted
        scipy_alarms += stats.ks_2samp(ref, same).pvalue < 0.05
    if n_ref <= drift.SMALL_SAMPLE:
        # Binomial(200, 0.05): 3 sd above its mean is 19; ties at bin edges only make KS more conservative.
        assert alarms <= 19 and alarms <= scipy_alarms + 6
    else:
        assert alarms <= 2  # a Wasserstein/std of 0.1 is far above the noise of 3000 values
    assert caught >= 0.95 * sims  # a 0.4-sd shift


@pytest.mark.parametrize("n_ref", [300, 5000])
def test_categorical_false_alarms_and_power(n_ref):
    rng = np.random.default_rng(n_ref + 1)
    sims, alarms, scipy_alarms, caught = 200, 0, 0, 0
    for _ in range(sims):
        ref = categories(rng, n_ref, [4, 2, 2, 1])
        n_cur = 400 if n_ref <= drift.SMALL_SAMPLE else 3000
        same, moved = categories(rng, n_cur, [4, 2, 2, 1]), categories(rng, n_cur, [2, 2, 2, 3])
        alarms += drift.compare(ref, same, "categorical").drifted
        caught += drift.compare(ref, moved, "categorical").drifted
        observed = same.set_index("key")["count"].reindex(ref["key"], fill_value=0)
        expected = ref["count"].to_numpy() / n_ref * n_cur
        scipy_alarms += stats.chisquare(observed.to_numpy(), expected).pvalue < 0.05
    if n_ref <= drift.SMALL_SAMPLE:
        assert alarms <= 19 and alarms <= scipy_alarms + 6
    else:
        assert alarms <= 2
    assert caught >= 0.95 * sims


def test_daily_compares_each_day_with_the_reference():
    rng = np.random.default_rng(11)
    ref = drift.binned(rng.normal(0, 1, 4000))
    days = []
    for i, shift in enumerate([0.0, 0.0, 1.0]):
        part = drift.binned(rng.normal(shift, 1, 500))  # small days: the KS test decides
        part["day"] = f"2026-11-0{i + 1}"
        days.append(part)
    frame = drift.daily(ref, pd.concat(days), "numeric")
    assert list(frame["day"]) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert list(frame["drifted"]) == [False, False, True]
    assert (frame["n_current"] == 500).all() and set(frame["method"]) == {"ks"}
    assert frame["distance"].iloc[2] > 0.5 > frame["distance"].iloc[0]
