"""Callaway & Sant'Anna against the published values of R's `did` package (../shared/reference)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from analytics.staggered import att_gt, twfe

REFERENCE = Path(__file__).resolve().parents[3].parent / "shared" / "reference" / "staggered"
SCENARIOS = {"mpdta_nev_dr": "never", "mpdta_nyt_dr": "not_yet"}


@pytest.fixture(scope="module")
def mpdta():
    """The county panel shipped with `did`."""
    if not REFERENCE.exists():
        pytest.fail(f"reference data missing at {REFERENCE}")
    return pd.read_csv(REFERENCE / "mpdta.csv")


def fit(mpdta, control, method="dr"):
    """att_gt on mpdta."""
    return att_gt(mpdta, "lemp", "countyreal", "year", "first.treat", control=control, method=method)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_group_time_effects_match_r(mpdta, scenario):
    reference = pd.read_csv(REFERENCE / "r_did_att_gt.csv").query("scenario == @scenario")
    for method in ("dr", "reg", "ipw"):  # identical without covariates
        cells = fit(mpdta, SCENARIOS[scenario], method).cells
        merged = cells.merge(reference, left_on=["cohort", "time"], right_on=["group", "t"], validate="one_to_one")
        assert len(merged) == len(reference) == 12
        np.testing.assert_allclose(merged["att_x"], merged["att_y"], atol=1e-9, rtol=0)
        np.testing.assert_allclose(merged["se_x"], merged["se_y"], atol=1e-9, rtol=0)


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("kind", ["simple", "group", "dynamic", "calendar"])
def test_aggregations_match_r(mpdta, scenario, kind):
    reference = pd.read_csv(REFERENCE / "r_did_aggte.csv").query("scenario == @scenario and type == @kind")
    result = fit(mpdta, SCENARIOS[scenario]).aggregate(kind)
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
    result = fit(mpdta, SCENARIOS[scenario]).pretest()
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
    with pytest.raises(ValueError, match="covariates"):
        att_gt(mpdta, "lemp", "countyreal", "year", "first.treat", covariates=["lpop"])
    switching = mpdta.copy()
    switching.loc[0, "first.treat"] = 2004
    with pytest.raises(ValueError, match="must not change"):
        att_gt(switching, "lemp", "countyreal", "year", "first.treat")
    with pytest.raises(ValueError, match="kind must be"):
        fit(mpdta, "never").aggregate("weekly")
