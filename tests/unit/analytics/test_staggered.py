"""Callaway & Sant'Anna against the published values of R's `did` package (tests/data/staggered)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats

from analytics.staggered import att_gt, twfe

REFERENCE = Path(__file__).resolve().parents[2] / "data" / "staggered"
# scenario -> (control, covariates, method), as in tests/data/staggered/README.md
SCENARIOS = {
    "mpdta_nev_dr": ("never", None, "dr"),
    "mpdta_nyt_dr": ("not_yet", None, "dr"),
    "mpdta_nev_reg_cov": ("never", ["lpop"], "reg"),
}


@pytest.fixture(scope="module")
def mpdta():
    """The county panel shipped with `did`."""
    if not REFERENCE.exists():
        pytest.fail(f"reference data missing at {REFERENCE}")
    return pd.read_csv(REFERENCE / "mpdta.csv")


def fit(mpdta, control, covariates=None, method="dr"):
    """att_gt on mpdta."""
    return att_gt(
        mpdta, "lemp", "countyreal", "year", "first.treat", control=control, covariates=covariates, method=method
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_group_time_effects_match_r(mpdta, scenario):
    reference = pd.read_csv(REFERENCE / "r_did_att_gt.csv").query("scenario == @scenario")
    control, covariates, published = SCENARIOS[scenario]
    for method in ("dr", "reg", "ipw") if covariates is None else (published,):  # identical without covariates
        cells = fit(mpdta, control, covariates, method).cells
        merged = cells.merge(reference, left_on=["cohort", "time"], right_on=["group", "t"], validate="one_to_one")
        assert len(merged) == len(reference) == 12
        np.testing.assert_allclose(merged["att_x"], merged["att_y"], atol=1e-9, rtol=0)
        np.testing.assert_allclose(merged["se_x"], merged["se_y"], atol=1e-9, rtol=0)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kind", ["simple", "group", "dynamic", "calendar"])
def test_aggregations_match_r(mpdta, scenario, kind):
    reference = pd.read_csv(REFERENCE / "r_did_aggte.csv").query("scenario == @scenario and type == @kind")
    result = fit(mpdta, *SCENARIOS[scenario]).aggregate(kind)
    assert result.overall_att == pytest.approx(reference["overall_att"].iloc[0], abs=1e-9)
    assert result.overall_se == pytest.approx(reference["overall_se"].iloc[0], abs=1e-9)
    if kind == "simple":
        assert result.table.empty
        return
    merged = result.table.merge(reference, left_on="key", right_on="egt", validate="one_to_one")
    assert len(merged) == len(reference)
    np.testing.assert_allclose(merged["att"], merged["att_egt"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(merged["se"], merged["se_egt"], atol=1e-9, rtol=0)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_pretest_matches_r(mpdta, scenario):
    reference = pd.read_csv(REFERENCE / "r_did_pretest.csv").query("scenario == @scenario").iloc[0]
    result = fit(mpdta, *SCENARIOS[scenario]).pretest()
    assert result.statistic == pytest.approx(reference["W"], abs=1e-9)
    assert result.df == 5
    assert round(result.p_value, 5) == pytest.approx(reference["Wpval"], abs=1e-12)  # R rounds to 5 places


def test_twfe_matches_dummy_variable_regression(mpdta):
    beta, se = twfe(mpdta, "lemp", "countyreal", "year", "first.treat")
    data = mpdta.assign(d=((mpdta["first.treat"] > 0) & (mpdta["year"] >= mpdta["first.treat"])).astype(float))
    ols = smf.ols("lemp ~ d + C(countyreal) + C(year)", data=data).fit(
        cov_type="cluster", cov_kwds={"groups": data["countyreal"]}
    )
    assert beta == pytest.approx(ols.params["d"], abs=1e-9)
    assert se == pytest.approx(ols.bse["d"], rel=1e-6)


def test_bad_input_is_refused(mpdta):
    with pytest.raises(ValueError, match="balanced"):
        att_gt(mpdta.iloc[1:], "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="lacks column"):
        att_gt(mpdta, "sales", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="control must be"):
        att_gt(mpdta, "lemp", "countyreal", "year", "first.treat", control="sometimes")
    with pytest.raises(ValueError, match="lacks column"):
        att_gt(mpdta, "lemp", "countyreal", "year", "first.treat", covariates=["income"])
    switching = mpdta.copy()
    switching.loc[0, "first.treat"] = 2004
    with pytest.raises(ValueError, match="must not change"):
        att_gt(switching, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="kind must be"):
        fit(mpdta, "never").aggregate("weekly")


def one_cell(mpdta, g, t, base):
    """The 2x2 comparison behind ATT(g, t) with never-treated controls: D, the change in lemp, lpop."""
    wide = mpdta.pivot(index="countyreal", columns="year", values="lemp")
    info = mpdta.groupby("countyreal")[["first.treat", "lpop"]].first()
    keep = info["first.treat"].isin([0, g])
    return (
        (info.loc[keep, "first.treat"] == g).astype(float).to_numpy(),
        (wide.loc[keep, t] - wide.loc[keep, base]).to_numpy(),
        info.loc[keep, "lpop"].to_numpy(),
    )


@pytest.mark.parametrize("method", ["ipw", "dr"])
def test_covariate_estimators_match_an_independent_statsmodels_computation(mpdta, method):
    import statsmodels.api as sm

    cells = fit(mpdta, "never", ["lpop"], method).cells.set_index(["cohort", "time"])
    for g, t, base in ((2004, 2006, 2003), (2006, 2007, 2005), (2007, 2005, 2004)):
        d, dy, lpop = one_cell(mpdta, g, t, base)
        x = sm.add_constant(lpop)
        ps = sm.Logit(d, x).fit(disp=0).predict(x)
        w = ps * (1 - d) / (1 - ps)
        if method == "ipw":
            expected = dy[d == 1].mean() - np.sum(w * dy) / np.sum(w)
        else:
            fitted = sm.OLS(dy[d == 0], x[d == 0]).fit().predict(x)
            expected = (dy - fitted)[d == 1].mean() - np.sum(w * (dy - fitted)) / np.sum(w)
        assert cells.loc[(g, t), "att"] == pytest.approx(expected, abs=1e-9)
    # Consistent estimators of the same effect: close to the regression estimate, with a real error.
    reg = fit(mpdta, "never", ["lpop"], "reg").aggregate("simple")
    mine = fit(mpdta, "never", ["lpop"], method).aggregate("simple")
    assert mine.overall_att == pytest.approx(reg.overall_att, abs=0.005)
    assert 0.5 * reg.overall_se < mine.overall_se < 1.5 * reg.overall_se


def test_multiplier_bootstrap_agrees_with_the_analytic_errors(mpdta):
    result = fit(mpdta, "never")
    boot = result.bootstrap(draws=4999, seed=1)
    ratio = boot.table["se"].to_numpy() / result.cells["se"].to_numpy()
    assert np.all(np.abs(ratio - 1) < 0.1)  # the bootstrap estimates the same sampling spread
    # A uniform band is wider than a pointwise one, and narrower than Bonferroni over 12 cells.
    assert stats.norm.ppf(0.975) < boot.critical_value < stats.norm.ppf(1 - 0.025 / 12)
    assert np.all(boot.table["band_low"] < boot.table["att"]) and np.all(boot.table["att"] < boot.table["band_high"])
    again = result.bootstrap(draws=4999, seed=1)
    assert again.critical_value == boot.critical_value  # reproducible
    with pytest.raises(ValueError):
        result.bootstrap(draws=10)


def test_event_study_has_pointwise_intervals_inside_a_uniform_band(mpdta):
    result = att_gt(mpdta, "lemp", "countyreal", "year", "first.treat", control="never")
    table, critical = result.event_study(draws=2999, seed=3)
    dynamic = result.aggregate("dynamic").table
    assert table["key"].tolist() == dynamic["key"].tolist() and np.allclose(table["att"], dynamic["att"])
    z = stats.norm.ppf(0.975)
    assert np.allclose(table["ci_high"] - table["att"], z * dynamic["se"])
    # Seven event times: the simultaneous band needs a larger critical value than one interval,
    # but no more than Bonferroni's, and the bootstrap SEs track the analytic ones.
    assert z < critical < stats.norm.ppf(1 - 0.025 / len(table))
    boot_se = (table["band_high"] - table["att"]) / critical
    assert np.all(np.abs(boot_se / dynamic["se"] - 1) < 0.1)


def test_uniform_pretest_accepts_parallel_trends_and_rejects_a_pre_trend(mpdta):
    fit_ok = att_gt(mpdta, "lemp", "countyreal", "year", "first.treat", control="never")
    wald = fit_ok.pretest()
    uniform = fit_ok.pretest_uniform(draws=1999, seed=2)
    assert uniform.df == 3 and 0 <= uniform.p_value <= 1
    # mpdta shows no strong pre-trend by either test at the 1% level.
    assert wald.p_value > 0.01 and uniform.p_value > 0.01
    # Make units that are treated later drift upward before treatment: both tests must see it.
    drifted = mpdta.assign(lemp=mpdta["lemp"] + np.where(mpdta["first.treat"] > 0, 0.15 * (mpdta["year"] - 2003), 0.0))
    fit_bad = att_gt(drifted, "lemp", "countyreal", "year", "first.treat", control="never")
    assert fit_bad.pretest().p_value < 0.001 and fit_bad.pretest_uniform(draws=1999, seed=2).p_value < 0.01


def test_edge_cohorts_are_dropped_or_recoded_as_r_does_and_said_so(mpdta):
    # Twenty counties treated from the first year on, and twenty going live after the last year:
    # R drops the first and counts the second as never treated, so the published values still hold.
    counties = mpdta.loc[mpdta["first.treat"] == 0, "countyreal"].unique()
    early = mpdta[mpdta["countyreal"].isin(counties[:20])].assign(countyreal=lambda f: f["countyreal"] + 100_000)
    edged = pd.concat([mpdta, early.assign(**{"first.treat": 2003})], ignore_index=True)
    edged.loc[edged["countyreal"].isin(counties[20:40]), "first.treat"] = 2010
    result = att_gt(edged, "lemp", "countyreal", "year", "first.treat", control="never")
    reference = pd.read_csv(REFERENCE / "r_did_att_gt.csv").query("scenario == 'mpdta_nev_dr'")
    merged = result.cells.merge(reference, left_on=["cohort", "time"], right_on=["group", "t"], validate="one_to_one")
    assert len(merged) == len(result.cells) == 12
    np.testing.assert_allclose(merged["att_x"], merged["att_y"], atol=1e-9, rtol=0)
    np.testing.assert_allclose(merged["se_x"], merged["se_y"], atol=1e-9, rtol=0)
    assert result.n == 500
    notes = " | ".join(result.warnings)
    assert "20 unit(s) treated from the first period on (cohort 2003) are dropped" in notes
    assert "20 unit(s) go live after the last period (2007; cohort 2010)" in notes


def test_every_unit_eventually_treated_compares_with_the_last_cohort_only(mpdta):
    # Without never-treated counties the last cohort (2007) has no comparison after it goes live:
    # it serves only as the comparison, and 2007 is dropped (R's did; csdid gives the same).
    treated = mpdta[mpdta["first.treat"] > 0]
    result = att_gt(treated, "lemp", "countyreal", "year", "first.treat", control="not_yet")
    assert set(result.cells["cohort"]) == {2004, 2006} and result.cells["time"].max() == 2006
    notes = " | ".join(result.warnings)
    assert "the last cohort (2007) serves only as the comparison" in notes and "periods 2007 (from" in notes
    group = result.aggregate("group")
    assert np.isfinite(group.overall_att) and group.table["key"].tolist() == [2004, 2006]
    # The same comparison made by hand: 2007 counties recoded as never treated, 2007 left out.
    by_hand = treated[treated["year"] < 2007].assign(**{"first.treat": lambda f: f["first.treat"].replace(2007, 0)})
    expected = att_gt(by_hand, "lemp", "countyreal", "year", "first.treat", control="not_yet")
    np.testing.assert_allclose(result.cells["att"], expected.cells["att"], atol=1e-12)
    np.testing.assert_allclose(result.cells["se"], expected.cells["se"], atol=1e-12)
    assert group.overall_att == pytest.approx(expected.aggregate("group").overall_att, abs=1e-12)
    # With control="never" the last cohort stands in for the never treated, with a warning.
    never = att_gt(treated, "lemp", "countyreal", "year", "first.treat", control="never")
    by_hand_never = att_gt(by_hand, "lemp", "countyreal", "year", "first.treat", control="never")
    np.testing.assert_allclose(never.cells["att"], by_hand_never.cells["att"], atol=1e-12)
    assert any("the last cohort (2007) is used as never treated" in w for w in never.warnings)


def test_no_warning_on_a_clean_panel(mpdta):
    assert fit(mpdta, "never", ["lpop"], "dr").warnings == []
