"""Pattern mining finds a planted pattern, prefers its simplest description, and stays quiet on noise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics import patterns

CONDITIONS = ["site", "band", "channel", "confidence"]


def decisions(rng, n=6000, plant=None):
    """Random decisions with a 10% override rate, optionally more in one subgroup."""
    frame = pd.DataFrame(
        {
            "site": rng.choice(["Leeds", "York", "Hull", "Bath", "Kent"], n),
            "band": rng.choice(["low", "mid", "high"], n),
            "channel": rng.choice(["web", "phone", "broker", "branch"], n),
            "confidence": rng.choice([str(d) for d in range(5, 10)], n),
        }
    )
    rate = np.full(n, 0.10)
    if plant is not None:
        rate[plant(frame)] = 0.35
    frame["overrides"] = (rng.random(n) < rate).astype(int)
    frame["n"] = 1
    # Outcomes for half the overrides: in the planted subgroup the AI was mostly wrong.
    frame["override_outcomes"] = frame["overrides"] * (rng.random(n) < 0.5)
    wrong = rng.random(n) < (0.9 if plant is None else np.where(plant(frame), 0.9, 0.3))
    frame["override_ai_wrong"] = frame["override_outcomes"] * wrong
    return frame


def cells(frame):
    return frame.groupby(CONDITIONS)[list(patterns.COUNTS)].sum().reset_index()


def test_benjamini_hochberg_matches_statsmodels():
    from statsmodels.stats.multitest import multipletests

    p = np.random.default_rng(0).random(40) ** 2
    assert np.allclose(patterns.benjamini_hochberg(p), multipletests(p, method="fdr_bh")[1])


def test_a_planted_two_condition_pattern_is_found_and_described_simply():
    rng = np.random.default_rng(1)
    frame = decisions(rng, plant=lambda f: (f["site"] == "York") & (f["band"] == "high"))
    found = patterns.mine(cells(frame), CONDITIONS)
    top = found[0]
    assert top.conditions == (("band", "high"), ("site", "York"))
    assert top.key == "band=high&site=York"
    subgroup = frame[(frame.site == "York") & (frame.band == "high")]
    assert top.n == len(subgroup) and top.overrides == subgroup.overrides.sum()
    assert top.excess == pytest.approx(top.overrides - top.n * frame.overrides.mean())
    assert top.rate_low < 0.35 < top.rate_high and top.ratio > 2
    # Its parents (York, or high band, alone) are explained by it and not reported beside it.
    assert not any(p.conditions in ((("site", "York"),), (("band", "high"),)) for p in found)
    # The AI was mostly wrong where people overrode it: that raises the priority.
    assert top.wrong_share > 0.7


def test_a_one_condition_pattern_is_not_split_into_refinements():
    rng = np.random.default_rng(2)
    frame = decisions(rng, plant=lambda f: f["band"] == "high")
    found = patterns.mine(cells(frame), CONDITIONS)
    assert found[0].conditions == (("band", "high"),)
    # Refinements such as "high band at York" carry no extra signal and are dropped.
    assert all(len(p.conditions) == 1 or ("band", "high") not in p.conditions for p in found)


def test_pure_noise_yields_findings_no_more_often_than_alpha():
    rng = np.random.default_rng(3)
    runs, alpha = 60, 0.05
    with_findings = sum(
        bool(patterns.mine(cells(decisions(rng, n=3000)), CONDITIONS, alpha=alpha)) for _ in range(runs)
    )
    # Under the global null BH bounds P(any finding) by alpha: allow for Monte Carlo error.
    assert stats.binom.sf(with_findings - 1, runs, alpha) > 0.01, with_findings
