"""Callaway & Sant'Anna against csdid (the Python port of R's `did` 2.5), live, on random panels.

Every combination of comparison group (never treated, not yet treated), estimator (reg, ipw,
dr) and covariates (none, one) runs on four panels: with a never-treated group, without one,
with units treated in the first period (and a cohort going live after the last period), and
with weak overlap (cells whose propensity reaches 0.999, and comparison units trimmed at
0.995). ATT(g, t), standard errors, the four aggregations and the pre-test must agree to 1e-6
on effects and 1e-4 on standard errors, and so must the cells each leaves out.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from analytics.staggered import KINDS, att_gt

csdid_att_gt = pytest.importorskip("csdid.att_gt")

ATT_TOLERANCE, SE_TOLERANCE = 1e-6, 1e-4
PERIODS = 5


def outcomes(rng: np.random.Generator, cohort: np.ndarray, x: np.ndarray) -> pd.DataFrame:
    """A balanced panel with unit effects, trends that depend on x, and effects growing after go-live."""
    n = len(cohort)
    period = np.tile(np.arange(1, PERIODS + 1), n)
    g = np.repeat(cohort, PERIODS)
    xx = np.repeat(x, PERIODS)
    treated = (g > 0) & (period >= g)
    y = (
        np.repeat(rng.normal(size=n), PERIODS)
        + 0.3 * period
        + 0.2 * xx * period
        + rng.normal(size=n * PERIODS)
        + treated * (1 + 0.2 * (period - g))
    )
    return pd.DataFrame({"id": np.repeat(np.arange(1, n + 1), PERIODS), "t": period, "g": g, "y": y, "x": xx})


@functools.cache
def panel(kind: str) -> pd.DataFrame:
    """The four designs, 300-400 units × 5 periods."""
    rng = np.random.default_rng({"with_never": 1, "without_never": 2, "edge_cohorts": 3, "weak_overlap": 1}[kind])
    if kind == "weak_overlap":
        n = 400
        x = rng.normal(0, 1, n)
        # Few never-treated units, mostly at low x; cohort 5 lies beyond their support (NA
        # cells), and one never-treated unit sits beyond every treated unit (trimmed).
        never = 0.04 * np.exp(-x) / np.mean(np.exp(-x))
        cohort = np.where(rng.random(n) < never, 0, rng.choice([3, 4], size=n, p=[0.6, 0.4]))
        cohort[(x > 1.0) & (cohort > 0)] = 5
        cohort[0], x[0] = 0, x.max() + 1.0
        return outcomes(rng, cohort, x)
    choices = {"with_never": [0, 3, 4, 5], "without_never": [3, 4, 5], "edge_cohorts": [0, 1, 3, 5, 7]}[kind]
    cohort = rng.choice(choices, size=300)
    x = rng.normal(0, 1, 300)
    frame = outcomes(rng, cohort, x)
    # A covariate that changes a little over time: each comparison takes its base period's value.
    return frame.assign(x=frame["x"] + 0.05 * rng.normal(size=len(frame)))


def fit_csdid(df: pd.DataFrame, control: str, method: str, covariates: bool) -> tuple[dict, list[str]]:
    """csdid's cells, aggregations (na_rm, as the product leaves NA cells out) and pre-test, and its warnings."""
    out: dict = {}
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("always")  # recorded and compared with ours below, not ignored
        fit = csdid_att_gt.ATTgt(
            "y",
            "t",
            "id",
            "g",
            df.copy(),
            control_group="nevertreated" if control == "never" else "notyettreated",
            xformla="y ~ x" if covariates else None,
        ).fit(est_method=method, bstrap=False)
        r = fit.results
        out["cells"] = pd.DataFrame({"cohort": r["group"], "time": r["year"], "att": r["att"], "se": r["se"]})
        out["W"], out["Wpval"] = fit.MP["W"], fit.MP["Wpval"]
        for kind in KINDS:
            try:
                out[kind] = fit.aggte(typec=kind, na_rm=True).atte
            except ValueError as exc:
                out[kind] = exc
    return out, [str(w.message) for w in caught]


COMBINATIONS = [
    (kind, control, method, covariates)
    for kind in ("with_never", "without_never", "edge_cohorts", "weak_overlap")
    for control in ("never", "not_yet")
    for method in ("reg", "ipw", "dr")
    for covariates in (False, True)
]


@pytest.mark.parametrize(("kind", "control", "method", "covariates"), COMBINATIONS)
def test_matches_csdid(kind, control, method, covariates):
    df = panel(kind)
    theirs, their_warnings = fit_csdid(df, control, method, covariates)
    ours = att_gt(df, "y", "id", "t", "g", control=control, covariates=["x"] if covariates else None, method=method)

    cells = ours.cells.merge(theirs["cells"], on=["cohort", "time"], how="outer", suffixes=("", "_r"), indicator=True)
    assert (cells["_merge"] == "both").all(), cells[cells["_merge"] != "both"]
    np.testing.assert_allclose(cells["att"], cells["att_r"], atol=ATT_TOLERANCE, rtol=0)  # NaN where NaN
    np.testing.assert_allclose(cells["se"], cells["se_r"], atol=SE_TOLERANCE, rtol=0)

    for aggregation in KINDS:
        reference = theirs[aggregation]
        if isinstance(reference, ValueError):  # nothing left to aggregate: both refuse
            with pytest.raises(ValueError):
                ours.aggregate(aggregation)
            continue
        mine = ours.aggregate(aggregation)
        assert mine.overall_att == pytest.approx(reference["overall_att"], abs=ATT_TOLERANCE)
        assert mine.overall_se == pytest.approx(float(np.ravel(reference["overall_se"])[0]), abs=SE_TOLERANCE)
        if aggregation != "simple":
            np.testing.assert_array_equal(mine.table["key"], np.asarray(reference["egt"], dtype=float))
            np.testing.assert_allclose(mine.table["att"], np.ravel(reference["att_egt"]), atol=ATT_TOLERANCE, rtol=0)
            np.testing.assert_allclose(mine.table["se"], np.ravel(reference["se_egt"]), atol=SE_TOLERANCE, rtol=0)

    if theirs["W"] is None:
        with pytest.raises(ValueError):
            ours.pretest()
    else:
        pretest = ours.pretest()
        assert pretest.statistic == pytest.approx(theirs["W"], rel=1e-6)
        assert pretest.p_value == pytest.approx(theirs["Wpval"], abs=1e-5)  # R rounds it to 5 places

    # Every cell csdid leaves out for overlap, and every unit it drops, is named in our warnings.
    notes = " | ".join(ours.warnings)
    for message in their_warnings:
        if match := re.match(r"overlap condition violated for group (\d+) in time period (\d+)", message):
            assert f"cohort {match[1]}, period {match[2]}: overlap condition violated" in notes
        if match := re.match(r"Dropped (\d+) units that were already treated in the first period", message):
            assert f"{match[1]} unit(s) treated from the first period on" in notes
        if message.startswith("No never-treated group is available"):
            assert "no unit is never treated" in notes


def test_the_panels_exercise_each_edge():
    """Guard against the random panels drifting away from the designs they stand for."""
    weak = att_gt(panel("weak_overlap"), "y", "id", "t", "g", control="never", covariates=["x"], method="dr")
    assert weak.cells["att"].isna().any() and weak.cells["att"].notna().any()
    assert any("trimmed" in note for note in weak.warnings)
    edge = att_gt(panel("edge_cohorts"), "y", "id", "t", "g", control="not_yet")
    assert any("treated from the first period on" in note for note in edge.warnings)
    assert any("after the last period" in note for note in edge.warnings)
    assert not (panel("without_never")["g"] == 0).any()


def test_a_cell_without_overlap_is_na_and_named_not_estimated():
    # Cohort 5 lies beyond the never-treated units' covariate support: a fitted propensity
    # reaches 0.999, so DR and IPW leave its cells out (they used to report a number) while the
    # outcome regression, which needs no propensity, still estimates them.
    df = panel("weak_overlap")
    for method in ("dr", "ipw"):
        result = att_gt(df, "y", "id", "t", "g", control="never", covariates=["x"], method=method)
        missing = result.cells[result.cells["att"].isna()]
        assert set(missing["cohort"]) == {5} and missing["se"].isna().all()
        for t in missing["time"]:
            assert any(w.startswith(f"cohort 5, period {t}: overlap condition violated") for w in result.warnings)
        assert 5 not in result.aggregate("group").table["key"].tolist()
    reg = att_gt(df, "y", "id", "t", "g", control="never", covariates=["x"], method="reg")
    assert reg.cells["att"].notna().all()


def test_trimming_matches_an_independent_statsmodels_computation():
    import statsmodels.api as sm

    df = panel("weak_overlap")
    units = df.drop_duplicates("id").set_index("id")
    wide = df.pivot(index="id", columns="t", values="y")
    sample = units["g"].isin([0, 3])
    d = (units.loc[sample, "g"] == 3).to_numpy(float)
    x = sm.add_constant(units.loc[sample, "x"].to_numpy())
    ps = sm.GLM(d, x, family=sm.families.Binomial()).fit().predict(x)
    keep = (d == 1) | (ps < 0.995)
    assert (~keep).sum() > 0 and ps.max() < 0.999  # one comparison unit trimmed, none beyond overlap
    dy = (wide.loc[sample, 4] - wide.loc[sample, 2]).to_numpy()  # ATT(3, 4), base period 2
    fitted = sm.OLS(dy[d == 0], x[d == 0]).fit().predict(x)
    w = np.where(keep, ps * (1 - d) / (1 - ps), 0.0)
    trimmed = (dy - fitted)[d == 1].mean() - np.sum(w * (dy - fitted)) / np.sum(w)
    w_all = ps * (1 - d) / (1 - ps)
    untrimmed = (dy - fitted)[d == 1].mean() - np.sum(w_all * (dy - fitted)) / np.sum(w_all)
    result = att_gt(df, "y", "id", "t", "g", control="never", covariates=["x"], method="dr")
    cell = result.cells.set_index(["cohort", "time"]).loc[(3, 4), "att"]
    assert cell == pytest.approx(trimmed, abs=1e-9)
    assert abs(cell - untrimmed) > 1e-4  # the trimmed unit matters
