"""Resolution-time analytics against hand computation and an independent library (lifelines)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from lifelines.utils import qth_survival_times

from analytics.rates import wilson_interval
from analytics.resolution import handling_times, resolution_table, survival_curves, with_durations

NOW = pd.Timestamp("2026-06-01 12:00", tz="UTC")


def exceptions(hours, resolved, kind="policy", sla_hours=24.0):
    """Exceptions that took `hours` to resolve, or (where not resolved) are `hours` old and open at NOW."""
    opened = [NOW - pd.Timedelta(hours=h + (1 if r else 0)) for h, r in zip(hours, resolved, strict=True)]
    ends = [o + pd.Timedelta(hours=h) if r else pd.NaT for o, h, r in zip(opened, hours, resolved, strict=True)]
    return pd.DataFrame(
        {
            "kind": kind,
            "severity": "high",
            "site": "Leeds",
            "opened_at": pd.to_datetime(opened, utc=True),
            "resolved_at": pd.to_datetime(ends, utc=True),
            "sla_due_at": pd.to_datetime([o + pd.Timedelta(hours=sla_hours) for o in opened], utc=True),
        }
    )


def open_now(hours, kind="policy", sla_hours=24.0):
    """Still-open exceptions opened `hours` before NOW."""
    return exceptions(hours, [False] * len(hours), kind=kind, sla_hours=sla_hours)


def test_hand_computed_kaplan_meier():
    # Times 1..9 with censoring at 2 (one of two), 5, 8, 9. By hand:
    # S(1)=9/10, S(2)=0.8, S(3)=0.8*6/7, S(4)=S(3)*5/6, S(6)=S(4)*3/4, S(7)=S(6)*2/3.
    hours = [1, 2, 2, 3, 4, 5, 6, 7, 8, 9]
    resolved = [1, 1, 0, 1, 1, 0, 1, 1, 0, 0]
    frame = exceptions(hours, resolved)
    curve = survival_curves(frame, "kind", NOW)
    expected = [
        1,
        0.9,
        0.8,
        0.8 * 6 / 7,
        0.8 * 6 / 7 * 5 / 6,
        0.8 * 6 / 7 * 5 / 6 * 3 / 4,
        0.8 * 6 / 7 * 5 / 6 * 3 / 4 * 2 / 3,
    ]
    assert curve["hours"].tolist()[:7] == [0, 1, 2, 3, 4, 6, 7]
    assert curve["survival"].tolist()[:7] == pytest.approx(expected, abs=1e-12)
    assert curve["hours"].iloc[-1] == pytest.approx(9)  # the curve runs on to the last censored time
    row = resolution_table(frame, "kind", NOW).iloc[0]
    assert (row["n"], row["resolved"], row["censored"]) == (10, 6, 4)
    assert row["median_hours"] == pytest.approx(6)  # first time S <= 0.5: S(4)=0.571, S(6)=0.429
    assert row["p90_hours"] is None  # S never falls to 0.1: the data cannot reach the 90th percentile


def test_a_survival_of_exactly_one_half_is_the_median():
    # 1..10 h, all resolved: S(5) = 5/10 exactly, so the median is 5 h, not 6 h.
    row = resolution_table(exceptions(list(range(1, 11)), [True] * 10), "kind", NOW).iloc[0]
    assert row["median_hours"] == pytest.approx(5)
    assert row["p90_hours"] == pytest.approx(9)  # S(9) = 0.1


def test_matches_lifelines_on_random_censored_data():
    rng = np.random.default_rng(42)
    for kind, scale in (("policy", 8.0), ("model_error", 20.0)):
        true = rng.exponential(scale, 200).round(3) + 0.01
        age = rng.exponential(scale * 2.5, 200).round(3) + 0.01
        resolved = true <= age
        hours = np.where(resolved, true, age)
        frame = exceptions(hours, resolved, kind=kind)
        row = resolution_table(frame, "kind", NOW).iloc[0]
        # Fit lifelines to the very durations our frame implies (timestamps round to nanoseconds).
        kmf = KaplanMeierFitter().fit(with_durations(frame, NOW)["hours"], resolved.astype(int))
        bands = kmf.confidence_interval_
        assert row["median_hours"] == pytest.approx(kmf.median_survival_time_, abs=1e-9)
        assert row["p90_hours"] == pytest.approx(qth_survival_times(0.1, kmf.survival_function_), abs=1e-9)
        assert row["median_ci_low"] == pytest.approx(qth_survival_times(0.5, bands.iloc[:, [0]]), abs=1e-9)
        assert row["median_ci_high"] == pytest.approx(qth_survival_times(0.5, bands.iloc[:, [1]]), abs=1e-9)
        assert row["p90_ci_low"] == pytest.approx(qth_survival_times(0.1, bands.iloc[:, [0]]), abs=1e-9)
        upper90 = qth_survival_times(0.1, bands.iloc[:, [1]])
        assert (row["p90_ci_high"] is None) == math.isinf(upper90)
        curve = survival_curves(frame, "kind", NOW)
        lifelines_s = kmf.survival_function_at_times(curve["hours"].to_numpy()).to_numpy()
        assert curve["survival"].to_numpy() == pytest.approx(lifelines_s, abs=1e-9)


def test_open_exceptions_are_censored_not_resolved_now():
    resolved = exceptions(list(range(1, 10)), [True] * 9)  # 1..9 h
    base = resolution_table(resolved, "kind", NOW).iloc[0]
    assert base["median_hours"] == pytest.approx(5)  # S(4) = 5/9, S(5) = 4/9
    still_open = open_now([3.0] * 9)
    with_open = pd.concat([resolved, still_open], ignore_index=True)
    censored = resolution_table(with_open, "kind", NOW).iloc[0]
    # Wrong ways: pretend the open ones were resolved now (3 h), or drop them.
    as_if_resolved = resolved.copy()
    fake = still_open.copy()
    fake["resolved_at"] = NOW
    naive = resolution_table(pd.concat([as_if_resolved, fake], ignore_index=True), "kind", NOW).iloc[0]
    assert naive["median_hours"] == pytest.approx(3)
    assert censored["median_hours"] > naive["median_hours"]
    assert censored["median_hours"] >= base["median_hours"]  # open cases can only lengthen the estimate
    assert (censored["n"], censored["resolved"], censored["censored"]) == (18, 9, 9)


def test_sla_breach_rate_is_kaplan_meier_in_sla_units():
    late = exceptions([30.0], [True])  # resolved after its 24 h SLA
    on_time = exceptions([2.0, 5.0], [True, True])
    open_overdue = open_now([40.0])  # open, past due: a known breach
    open_in_time = open_now([1.0])  # open, not yet due: censored at 1/24 of its SLA
    frame = pd.concat([late, on_time, open_overdue, open_in_time], ignore_index=True)
    row = resolution_table(frame, "kind", NOW).iloc[0]
    # By hand, in SLA units: resolutions at 2/24 and 5/24, the open one censored at 1/24 first.
    # S(1) = (1 - 1/4)(1 - 1/3) = 1/2, where the naive share of breaches says 2/5.
    assert row["sla_breach_rate"] == pytest.approx(0.5, abs=1e-12)
    assert row["sla_known_breaches"] == 2
    kmf = KaplanMeierFitter().fit([1 / 24, 2 / 24, 5 / 24, 30 / 24, 40 / 24], [0, 1, 1, 1, 0])
    ci = kmf.confidence_interval_survival_function_
    at_one = ci[ci.index <= 1.0].iloc[-1]
    assert row["sla_breach_ci_low"] == pytest.approx(at_one.iloc[0], abs=1e-9)
    assert row["sla_breach_ci_high"] == pytest.approx(at_one.iloc[1], abs=1e-9)


def test_sla_breach_rate_matches_lifelines_on_random_censored_data():
    rng = np.random.default_rng(7)
    n = 400
    sla = rng.choice([4.0, 24.0, 72.0], n)
    took = rng.exponential(sla * 0.8)  # hours to resolve, if it ever gets there
    age = rng.uniform(0, 3, n) * sla  # how long ago it opened
    resolved = took <= age
    opened = NOW - pd.to_timedelta(age, unit="h")
    frame = pd.DataFrame(
        {
            "kind": "policy",
            "severity": "high",
            "site": "Leeds",
            "opened_at": opened,
            "resolved_at": pd.Series(opened + pd.to_timedelta(took, unit="h")).where(resolved),
            "sla_due_at": opened + pd.to_timedelta(sla, unit="h"),
        }
    )
    row = resolution_table(frame, "kind", NOW).iloc[0]
    units = np.where(resolved, took, age) / sla
    kmf = KaplanMeierFitter().fit(units, resolved)
    assert 0.2 < 1 - resolved.mean() < 0.5  # a realistic share still open
    assert row["sla_breach_rate"] == pytest.approx(float(kmf.survival_function_at_times(1.0).iloc[0]), abs=1e-12)
    ci = kmf.confidence_interval_survival_function_
    at_one = ci[ci.index <= 1.0].iloc[-1]
    assert (row["sla_breach_ci_low"], row["sla_breach_ci_high"]) == pytest.approx(tuple(at_one), abs=1e-9)
    true_rate = float(np.mean(np.exp(-1 / 0.8)))  # P(exponential(0.8 SLA) > 1 SLA)
    assert abs(row["sla_breach_rate"] - true_rate) < 0.08
    naive = ((frame["resolved_at"].fillna(NOW)) > frame["sla_due_at"]).mean()
    assert naive < true_rate - 0.08  # the old definition: open, not-yet-due ones counted on time
    assert row["sla_known_breaches"] == int(((frame["resolved_at"].fillna(NOW)) > frame["sla_due_at"]).sum())


def test_sla_breach_rate_unknown_until_someone_reaches_the_due_time():
    row = resolution_table(open_now([1.0, 2.0]), "kind", NOW).iloc[0]
    assert row["sla_breach_rate"] is None and row["sla_breach_ci_low"] is None
    assert row["sla_known_breaches"] == 0
    all_late = resolution_table(exceptions([30.0, 40.0], [True, True]), "kind", NOW).iloc[0]
    assert all_late["sla_breach_rate"] == 1.0
    assert (all_late["sla_breach_ci_low"], all_late["sla_breach_ci_high"]) == pytest.approx(wilson_interval(2, 2))


def test_as_of_ignores_later_resolutions_and_later_exceptions():
    frame = exceptions([2.0, 30.0, 5.0], [True, True, True])  # opened 3, 31 and 6 h ago, all resolved 1 h ago
    later = exceptions([0.5], [True])
    later["opened_at"] = NOW - pd.Timedelta(hours=1)
    as_of = NOW - pd.Timedelta(hours=2)
    durations = with_durations(pd.concat([frame, later], ignore_index=True), as_of)
    assert len(durations) == 3  # the exception opened after the as-of time did not exist yet
    assert not durations["resolved"].any()  # their resolutions came after it
    assert durations["hours"].tolist() == pytest.approx([1, 29, 4])
    assert durations["breached"].tolist() == [False, True, False]
    row = resolution_table(frame, "kind", as_of).iloc[0]
    assert (row["resolved"], row["censored"], row["sla_known_breaches"]) == (0, 3, 1)


def test_groups_and_total_row():
    frame = pd.concat(
        [exceptions([1, 2, 3], [1, 1, 1], kind="policy"), exceptions([10, 20], [1, 1], kind="model_error")]
    )
    table = resolution_table(frame, "kind", NOW)
    assert table["key"].tolist() == ["model_error", "policy", "all"]
    assert table.set_index("key").loc["all", "n"] == 5
    assert table.set_index("key").loc["policy", "median_hours"] == pytest.approx(2)


def test_nothing_resolved_gives_null_percentiles():
    row = resolution_table(open_now([1.0, 2.0]), "kind", NOW).iloc[0]
    assert row["median_hours"] is None and row["median_ci_low"] is None and row["censored"] == 2


def test_inputs_are_not_mutated_and_bad_input_is_refused():
    frame = exceptions([1, 2], [1, 1])
    before = frame.copy()
    with_durations(frame, NOW)
    resolution_table(frame, "kind", NOW)
    pd.testing.assert_frame_equal(frame, before)
    with pytest.raises(ValueError, match="by must be one of"):
        resolution_table(frame, "colour", NOW)
    with pytest.raises(ValueError, match="lacks column"):
        resolution_table(frame.drop(columns=["sla_due_at"]), "kind", NOW)


def test_wilson_matches_the_formula():
    for k, n in ((0, 10), (3, 10), (10, 10), (17, 250)):
        p, z = k / n, 1.959963984540054
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        low, high = wilson_interval(k, n)
        assert low == pytest.approx(max(centre - half, 0), abs=1e-12)
        assert high == pytest.approx(min(centre + half, 1), abs=1e-12)
    assert wilson_interval(0, 0) == (None, None)


def test_handling_times_from_buckets_match_numpy():
    rng = np.random.default_rng(3)
    seconds = rng.lognormal(3, 1, 1001)
    sites = rng.choice(["A", "B"], 1001)
    buckets = np.round(np.log(np.maximum(seconds, 1.0)) * 20).astype(int)
    frame = (
        pd.DataFrame({"site": sites, "bucket": buckets, "decisions": 1})
        .groupby(["site", "bucket"], as_index=False)
        .sum()
    )
    table = handling_times(frame, "site").set_index("key")
    for site in ("A", "B"):
        mine = buckets[sites == site]
        for column, q in (("median_seconds", 0.5), ("p90_seconds", 0.9)):
            # Independent: the same quantile (first value whose CDF reaches q) of the raw bucket values.
            expected = np.exp(np.quantile(mine, q, method="inverted_cdf") / 20)
            assert table.loc[site, column] == pytest.approx(expected, rel=1e-12)
        assert table.loc[site, "median_seconds"] == pytest.approx(np.median(seconds[sites == site]), rel=0.05)
    assert table.loc["all", "n"] == 1001
