"""Override analytics against hand formulas and statsmodels, to 1e-9."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.proportion import confint_proportions_2indep, proportion_confint

from analytics.overrides import accuracy, compare_rates, p_chart, reviewer_table, with_rates


def wilson(k, n, z=1.959963984540054):
    """Wilson score interval by its formula."""
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return centre - half, centre + half


def test_rates_and_wilson_intervals_match_statsmodels():
    counts = pd.DataFrame(
        {
            "key": ["a", "b", "c"],
            "decisions": [120, 40, 5],
            "accepts": [90, 30, 0],
            "overrides": [25, 8, 0],
            "escalations": [5, 2, 5],
        }
    )
    table = with_rates(counts).set_index("key")
    for key, k, n in (("a", 25, 115), ("b", 8, 38)):
        low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
        assert table.loc[key, "override_rate"] == pytest.approx(k / n, abs=1e-12)
        assert table.loc[key, "ci_low"] == pytest.approx(low, abs=1e-9)
        assert table.loc[key, "ci_high"] == pytest.approx(high, abs=1e-9)
    assert table.loc["a", "escalation_rate"] == pytest.approx(5 / 120)
    assert pd.isna(table.loc["c", "override_rate"]) and pd.isna(table.loc["c", "ci_low"])  # only escalations
    assert "override_rate" not in counts.columns  # input untouched


def test_newcombe_interval_by_hand_and_the_test_it_inverts():
    k1, n1, k2, n2 = 60, 400, 30, 380
    c = compare_rates("new", k1, n1, "old", k2, n2)
    p1, p2 = k1 / n1, k2 / n2
    # At alpha = p the Newcombe interval just touches 0 (statsmodels computes the interval).
    low, _ = confint_proportions_2indep(k1, n1, k2, n2, method="newcomb", compare="diff", alpha=c.p_value)
    assert low == pytest.approx(0, abs=1e-9)
    assert c.z == pytest.approx(stats.norm.isf(c.p_value / 2), abs=1e-9)
    l1, u1 = wilson(k1, n1)
    l2, u2 = wilson(k2, n2)
    d = p1 - p2
    assert c.difference == pytest.approx(d, abs=1e-12)
    assert c.ci_low == pytest.approx(d - math.sqrt((p1 - l1) ** 2 + (u2 - p2) ** 2), abs=1e-9)
    assert c.ci_high == pytest.approx(d + math.sqrt((u1 - p1) ** 2 + (p2 - l2) ** 2), abs=1e-9)
    with pytest.raises(ValueError):
        compare_rates("a", 0, 0, "b", 1, 2)
    assert compare_rates("a", 3, 30, "b", 5, 50).p_value == 1.0  # equal rates


def test_test_and_interval_never_disagree():
    # The pooled z-test beside a Newcombe interval disagreed near p = 0.05: z-test significant
    # while the interval spanned 0, or the reverse. Search counts near that border.
    disagreements_before = 0
    for k1 in range(5, 40):
        for k2 in range(0, k1):
            c = compare_rates("a", k1, 120, "b", k2, 110)
            excludes_zero = c.ci_low > 0 or c.ci_high < 0
            assert (c.p_value < 0.05) == excludes_zero, (k1, k2, c)
            pooled = (k1 + k2) / 230
            z = (k1 / 120 - k2 / 110) / math.sqrt(pooled * (1 - pooled) * (1 / 120 + 1 / 110))
            disagreements_before += (2 * stats.norm.sf(abs(z)) < 0.05) != excludes_zero
    assert disagreements_before > 0  # the old pairing did disagree on some of these counts


def test_reviewer_override_rate_leaves_escalations_out():
    frame = pd.DataFrame(
        [{"reviewer": "R", "bucket": 60, "decisions": 100, "accepts": 60, "overrides": 20}]  # 20 escalations
    )
    row = reviewer_table(frame).iloc[0]
    assert row["override_rate"] == pytest.approx(20 / 80)
    assert (row["override_ci_low"], row["override_ci_high"]) == pytest.approx(wilson(20, 80))
    assert row["escalations"] == 20 and row["escalation_rate"] == pytest.approx(0.2)
    assert row["accept_rate"] == pytest.approx(0.6)


def test_p_chart_limits_and_signals():
    days = [f"2026-01-{d:02d}" for d in range(1, 21)]
    n = [100] * 20
    overrides = [10] * 5 + [30] + [12] * 8 + [10] * 6  # day 6 beyond; days 7..14 a run of 8 above
    frame = pd.DataFrame(
        {
            "version": "v1",
            "day": days,
            "accepts": [t - o for t, o in zip(n, overrides, strict=True)],
            "overrides": overrides,
        }
    )
    chart = p_chart(frame, baseline_periods=5)
    centre = 0.10
    ucl = centre + 3 * math.sqrt(centre * (1 - centre) / 100)
    assert chart["centre"].tolist() == pytest.approx([centre] * 20)
    assert chart["ucl"].iloc[0] == pytest.approx(ucl, abs=1e-12)
    assert chart["lcl"].iloc[0] == pytest.approx(max(centre - 3 * math.sqrt(0.09 / 100), 0), abs=1e-12)
    assert chart["beyond_limits"].tolist() == [i == 5 for i in range(20)]
    # Days 6..14 are all above the centre (day 6 itself starts the run): the 8th of them is day 13.
    assert chart.loc[chart["run_of_8"], "day"].tolist() == ["2026-01-13", "2026-01-14"]
    assert chart["in_baseline"].sum() == 5


def test_reviewer_median_from_buckets():
    rng = np.random.default_rng(5)
    seconds = rng.lognormal(3.5, 0.8, 501)
    buckets = np.round(np.log(np.maximum(seconds, 1.0)) * 20).astype(int)
    frame = pd.DataFrame({"reviewer": "R", "bucket": buckets, "decisions": 1, "accepts": 1, "overrides": 0})
    grouped = frame.groupby(["reviewer", "bucket"], as_index=False).sum()
    row = reviewer_table(grouped).iloc[0]
    assert row["decisions"] == 501
    assert row["median_seconds"] == pytest.approx(np.exp(np.median(buckets) / 20), rel=1e-12)
    assert row["median_seconds"] == pytest.approx(np.median(seconds), rel=0.03)  # buckets are 5% wide


def test_accuracy_shares_with_wilson():
    counts = pd.DataFrame(
        [
            {
                "key": "all",
                "with_outcome": 200,
                "ai_right": 150,
                "final_right": 170,
                "overrides": 40,
                "corrected": 25,
                "overrode_right": 10,
            }
        ]
    )
    row = accuracy(counts).iloc[0]
    assert row["ai_accuracy"] == pytest.approx(0.75)
    low, high = proportion_confint(150, 200, method="wilson")
    assert (row["ai_accuracy_ci_low"], row["ai_accuracy_ci_high"]) == pytest.approx((low, high), abs=1e-9)
    assert row["corrected_share"] == pytest.approx(25 / 40) and row["overrode_right_share"] == pytest.approx(10 / 40)
