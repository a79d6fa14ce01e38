"""Challenger analytics against statsmodels: McNemar (exact and chi-square) and Wilson intervals, to 1e-9."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar
from statsmodels.stats.proportion import proportion_confint

from analytics.challengers import CELL_FLAGS, EXACT_BELOW, compare, mcnemar, tally


@pytest.mark.parametrize(("b", "c"), [(0, 1), (3, 9), (12, 12), (1, 23), (20, 4)])
def test_small_discordant_counts_use_the_exact_binomial_test_like_statsmodels(b, c):
    assert b + c < EXACT_BELOW
    ours = mcnemar(b, c)
    theirs = sm_mcnemar([[10, b], [c, 7]], exact=True)
    assert ours.method == "exact binomial"
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-9)


@pytest.mark.parametrize(("b", "c"), [(13, 12), (30, 10), (5, 40), (100, 130), (400, 380)])
def test_larger_discordant_counts_use_the_corrected_chi_square_like_statsmodels(b, c):
    assert b + c >= EXACT_BELOW
    ours = mcnemar(b, c)
    theirs = sm_mcnemar([[50, b], [c, 60]], exact=False, correction=True)
    assert ours.method.startswith("chi-square")
    assert ours.p_value == pytest.approx(theirs.pvalue, abs=1e-9)
    assert ours.statistic == pytest.approx(theirs.statistic, abs=1e-9)


def test_no_discordant_pairs_has_nothing_to_test_and_negative_counts_fail():
    assert mcnemar(0, 0).p_value is None
    with pytest.raises(ValueError, match="negative"):
        mcnemar(-1, 3)


def _cases(seed: int, size: int) -> pd.DataFrame:
    """Simulated cases: one row each, with a segment, its flags, and a case count of 1."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            flag: rng.random(size) < share
            for flag, share in zip(CELL_FLAGS, (0.7, 0.9, 0.6, 0.75, 0.8, 0.65, 0.55), strict=True)
        }
    )
    frame["segment"] = rng.choice(["motor", "home"], size)
    frame["n"] = 1
    return frame


def _cells(cases: pd.DataFrame) -> pd.DataFrame:
    """The same cases counted into cells, as the SQL does."""
    return cases.groupby(["segment", *CELL_FLAGS]).size().rename("n").reset_index()


def test_counted_cells_give_what_counting_the_cases_gives_with_statsmodels_intervals_and_tests():
    cases = _cases(7, 3000)
    table = compare(_cells(cases), ["segment"]).set_index("segment")
    for segment, rows in cases.groupby("segment"):
        got = table.loc[segment]
        decided = rows[rows.has_final]
        agree = int(decided.c_agree.sum())
        assert got["n"] == len(rows)
        assert got["agreement"] == pytest.approx(agree / len(decided), abs=1e-12)
        low, high = proportion_confint(agree, len(decided), method="wilson")
        assert (got["agreement_ci_low"], got["agreement_ci_high"]) == pytest.approx((low, high), abs=1e-9)
        aided = decided[decided.aided]
        overrides = int((~aided.c_agree).sum())
        assert got["would_be_override_rate"] == pytest.approx(overrides / len(aided), abs=1e-12)
        low, high = proportion_confint(overrides, len(aided), method="wilson")
        assert (got["would_be_override_rate_ci_low"], got["would_be_override_rate_ci_high"]) == pytest.approx(
            (low, high), abs=1e-9
        )
        known = rows[rows.has_truth]
        right = int(known.c_right.sum())
        assert got["accuracy"] == pytest.approx(right / len(known), abs=1e-12)
        low, high = proportion_confint(right, len(known), method="wilson")
        assert (got["accuracy_ci_low"], got["accuracy_ci_high"]) == pytest.approx((low, high), abs=1e-9)
        assert got["champion_accuracy"] == pytest.approx(known.k_right.mean(), abs=1e-12)
        paired = pd.crosstab(known.k_right, known.c_right).reindex(index=[True, False], columns=[True, False])
        theirs = sm_mcnemar(paired.to_numpy(), exact=False, correction=True)
        assert got["mcnemar_p"] == pytest.approx(theirs.pvalue, abs=1e-9)
        paired = pd.crosstab(decided.k_agree, decided.c_agree).reindex(index=[True, False], columns=[True, False])
        theirs = sm_mcnemar(paired.to_numpy(), exact=False, correction=True)
        assert got["mcnemar_agreement_p"] == pytest.approx(theirs.pvalue, abs=1e-9)


def test_a_group_without_outcomes_or_decisions_has_no_rates():
    cells = pd.DataFrame([{"segment": "x", "n": 4, **dict.fromkeys(CELL_FLAGS, False)}])
    row = compare(cells, ["segment"]).iloc[0]
    assert row["n"] == 4
    assert pd.isna(row["accuracy"]) and pd.isna(row["agreement"]) and pd.isna(row["mcnemar_p"])
    assert row["mcnemar_method"] == "no discordant pairs"


def test_every_combination_of_flags_is_counted_once():
    combos = [
        dict(zip(CELL_FLAGS, bits, strict=True)) for bits in itertools.product([False, True], repeat=len(CELL_FLAGS))
    ]
    cells = pd.DataFrame([{**c, "n": 1} for c in combos])
    total = tally(cells, []).iloc[0]
    assert total["n"] == 2 ** len(CELL_FLAGS)
    assert total["decided"] == 2 ** (len(CELL_FLAGS) - 1)
    assert total["right_only_challenger"] == 2 ** (len(CELL_FLAGS) - 3)
    with pytest.raises(ValueError, match="lacks column"):
        tally(cells.drop(columns="aided"), [])
