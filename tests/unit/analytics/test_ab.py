"""A/B estimators checked against closed forms and statsmodels."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.stats.power import NormalIndPower

from analytics import ab


def frame(rng, n=4000, effect=2.0, clusters=None, icc_sd=0.0):
    arm = np.where(rng.random(n) < 0.5, "ai_shown", "control")
    cluster = rng.integers(0, clusters, n) if clusters else np.arange(n)
    if clusters:  # assignment by cluster
        arm = np.where(rng.random(clusters)[cluster] < 0.5, "ai_shown", "control")
    shock = rng.normal(0, icc_sd, clusters or n)[cluster] if icc_sd else 0
    y = 50 + effect * (arm == "ai_shown") + shock + rng.normal(0, 10, n)
    return pd.DataFrame({"y": y, "arm": arm, "cluster": cluster})


def test_sample_ratio_check_by_hand():
    srm = ab.sample_ratio_check({"ai_shown": 520, "control": 480}, {"ai_shown": 0.5, "control": 0.5})
    assert srm.chi2 == pytest.approx(2 * 20**2 / 500)
    assert srm.expected == {"ai_shown": 500.0, "control": 500.0}
    assert not srm.mismatch
    broken = ab.sample_ratio_check({"ai_shown": 5600, "control": 4400}, {"ai_shown": 0.5, "control": 0.5})
    assert broken.mismatch and broken.p_value < 1e-30
    skewed = ab.sample_ratio_check({"ai_shown": 2000, "control": 8000}, {"ai_shown": 0.2, "control": 0.8})
    assert skewed.chi2 == pytest.approx(0.0)


def test_robust_difference_is_welch_and_lift_is_the_delta_method():
    df = frame(np.random.default_rng(1))
    eff = ab.difference_in_means(df, "y")
    t = df.loc[df.arm == "ai_shown", "y"]
    c = df.loc[df.arm == "control", "y"]
    var_t, var_c = t.var() / len(t), c.var() / len(c)
    assert eff.difference == pytest.approx(t.mean() - c.mean(), rel=1e-12)
    assert eff.se == pytest.approx(np.sqrt(var_t + var_c), rel=1e-10)
    lift_se = np.sqrt(var_t / c.mean() ** 2 + t.mean() ** 2 * var_c / c.mean() ** 4)
    assert eff.lift == pytest.approx(t.mean() / c.mean() - 1, rel=1e-12)
    assert eff.lift_se == pytest.approx(lift_se, rel=1e-10)
    fit = sm.OLS(df.y, sm.add_constant((df.arm == "ai_shown").astype(float))).fit(cov_type="HC2")
    assert eff.se == pytest.approx(fit.bse.iloc[1], rel=1e-10)


def test_clustered_se_matches_statsmodels_and_covers():
    rng = np.random.default_rng(2)
    df = frame(rng, n=3000, clusters=60, icc_sd=4.0)
    eff = ab.difference_in_means(df, "y", cluster="cluster")
    x = sm.add_constant((df.arm == "ai_shown").astype(float))
    fit = sm.OLS(df.y, x).fit(cov_type="cluster", cov_kwds={"groups": df.cluster})
    assert eff.se == pytest.approx(fit.bse.iloc[1], rel=1e-10)
    assert eff.clusters == 60
    # Over repeated experiments the clustered interval covers the truth about 95% of the time;
    # the unclustered one, ignoring the shared shocks, covers far less often.
    covered = naive = 0
    for _ in range(200):
        sim = frame(rng, n=1500, clusters=40, icc_sd=4.0)
        clustered = ab.difference_in_means(sim, "y", cluster="cluster", draws=999)
        plain = ab.difference_in_means(sim, "y")
        covered += clustered.ci_low <= 2.0 <= clustered.ci_high
        naive += plain.ci_low <= 2.0 <= plain.ci_high
    assert 0.89 <= covered / 200 <= 0.99
    assert naive / 200 < 0.8


def test_proportions_use_the_unpooled_binomial_se():
    rng = np.random.default_rng(3)
    arm = np.where(rng.random(5000) < 0.5, "ai_shown", "control")
    y = (rng.random(5000) < np.where(arm == "ai_shown", 0.30, 0.25)).astype(int)
    df = pd.DataFrame({"y": y, "arm": arm})
    eff = ab.difference_in_proportions(df, "y")
    p1, n1 = y[arm == "ai_shown"].mean(), (arm == "ai_shown").sum()
    p0, n0 = y[arm == "control"].mean(), (arm == "control").sum()
    assert eff.se == pytest.approx(np.sqrt(p1 * (1 - p1) / (n1 - 1) + p0 * (1 - p0) / (n0 - 1)), rel=1e-10)
    with pytest.raises(ValueError, match="0 or 1"):
        ab.difference_in_proportions(df.assign(y=df.y * 2), "y")


def test_cuped_removes_the_predictable_variance():
    rng = np.random.default_rng(4)
    n = 6000
    pre = rng.normal(100, 15, n)
    arm = np.where(rng.random(n) < 0.5, "ai_shown", "control")
    y = 0.8 * pre + 3.0 * (arm == "ai_shown") + rng.normal(0, 8, n)
    df = pd.DataFrame({"y": y, "pre": pre, "arm": arm})
    result = ab.cuped(df, "y", "pre")
    rho = np.corrcoef(y, pre)[0, 1]
    assert result.variance_reduction == pytest.approx(rho**2, rel=1e-9)
    assert result.theta == pytest.approx(np.cov(y, pre)[0, 1] / pre.var(ddof=1), rel=1e-12)
    assert result.adjusted.se < 0.6 * result.unadjusted.se
    # Unclustered, the effect's variance falls by about the outcome's (the same rho^2).
    assert result.estimate_variance_reduction == pytest.approx(rho**2, abs=0.03)
    assert result.adjusted.ci_low < 3.0 < result.adjusted.ci_high


def test_power_and_mde_agree_with_statsmodels():
    plan = ab.minimum_detectable_effect(sd=10, n_total=2000, treatment_share=0.3)
    power = NormalIndPower().power(
        effect_size=plan.minimum_detectable_effect / 10, nobs1=600, ratio=1400 / 600, alpha=0.05
    )
    assert power == pytest.approx(0.8, abs=1e-3)
    sized = ab.sample_size(sd=10, effect=plan.minimum_detectable_effect, treatment_share=0.3)
    assert sized.n_total == pytest.approx(2000, abs=1)
    clustered = ab.sample_size(sd=10, effect=1.0, design_effect=2.5)
    assert clustered.n_total == pytest.approx(2.5 * ab.sample_size(sd=10, effect=1.0).n_total, rel=1e-3)
    assert ab.proportion_sd(0.2) == pytest.approx(0.4)


def test_traffic_outside_the_declared_arms_fails_the_sample_ratio_check():
    weights = {"ai_shown": 0.5, "control": 0.5}
    clean = ab.sample_ratio_check({"ai_shown": 500, "control": 500}, weights)
    assert not clean.mismatch and clean.unexpected == {}
    leaked = ab.sample_ratio_check({"ai_shown": 500, "control": 500, "legacy": 3}, weights)
    assert leaked.p_value == pytest.approx(1.0)  # the declared arms alone look perfect
    assert leaked.mismatch and leaked.unexpected == {"legacy": 3}


def few_clusters(rng, clusters=12, effect=0.0):
    """Rows in `clusters` clusters of uneven size, half of the clusters treated, shared shocks."""
    sizes = rng.integers(20, 120, clusters)
    cluster = np.repeat(np.arange(clusters), sizes)
    treated_clusters = rng.permutation(clusters) < clusters // 2
    arm = np.where(treated_clusters[cluster], "ai_shown", "control")
    y = 10 + effect * (arm == "ai_shown") + rng.normal(0, 2, clusters)[cluster] + rng.normal(0, 3, len(cluster))
    return pd.DataFrame({"y": y, "arm": arm, "cluster": cluster})


def bootstrap_p_by_refits(df, weights, b0):
    """The wild cluster restricted bootstrap written out: statsmodels refits each draw (CR1)."""
    codes, _ = pd.factorize(df["cluster"])
    t = (df["arm"] == "ai_shown").astype(float).to_numpy()
    y = df["y"].to_numpy()
    x = sm.add_constant(t)
    observed = sm.OLS(y, x).fit(cov_type="cluster", cov_kwds={"groups": codes})
    t_obs = (observed.params[1] - b0) / observed.bse[1]
    fitted = b0 * t + (y - b0 * t).mean()  # the fit with the null imposed
    residual = y - fitted
    draws = []
    for w in weights:
        fit = sm.OLS(fitted + w[codes] * residual, x).fit(cov_type="cluster", cov_kwds={"groups": codes})
        draws.append((fit.params[1] - b0) / fit.bse[1])
    return float(np.mean(np.abs(draws) >= abs(t_obs) - 1e-12))


def test_wild_cluster_bootstrap_matches_refits_by_statsmodels():
    df = few_clusters(np.random.default_rng(8), clusters=8, effect=1.5)
    eff = ab.difference_in_means(df, "y", cluster="cluster", draws=199, seed=3)
    weights = ab.webb_weights(199, 8, 3)
    assert eff.p_value == pytest.approx(bootstrap_p_by_refits(df, weights, 0.0), abs=1e-12)
    assert "wild cluster bootstrap" in eff.method and "8 clusters" in eff.method
    # The interval inverts the same test: just inside each end the null is kept, just outside refused.
    for end, inward in ((eff.ci_low, 1), (eff.ci_high, -1)):
        step = 1e-4 * eff.se
        assert bootstrap_p_by_refits(df, weights, end + inward * step) > 0.05
        assert bootstrap_p_by_refits(df, weights, end - inward * step) <= 0.05


def test_many_clusters_use_t_with_g_minus_one_degrees_of_freedom():
    rng = np.random.default_rng(9)
    df = few_clusters(rng, clusters=60, effect=1.0)
    eff = ab.difference_in_means(df, "y", cluster="cluster")
    critical = stats.t.ppf(0.975, 59)
    assert (eff.ci_low, eff.ci_high) == pytest.approx(
        (eff.difference - critical * eff.se, eff.difference + critical * eff.se)
    )
    assert eff.p_value == pytest.approx(2 * stats.t.sf(abs(eff.difference / eff.se), 59))
    assert "t(59)" in eff.method and "bootstrap" not in eff.method


def test_false_positive_rate_with_twelve_clusters_is_nominal():
    # No effect, 12 clusters of uneven size: normal critical values on CR1 reject far too often;
    # the wild cluster bootstrap stays near the nominal 5% (5.9% averaged over 6,000 such runs).
    rng = np.random.default_rng(1)
    runs, bootstrap_rejects, normal_rejects = 1500, 0, 0
    for seed in range(runs):
        df = few_clusters(rng)
        eff = ab.difference_in_means(df, "y", cluster="cluster", draws=399, seed=seed)
        bootstrap_rejects += eff.p_value < 0.05
        normal_rejects += 2 * stats.norm.sf(abs(eff.difference / eff.se)) < 0.05
    assert 0.035 <= bootstrap_rejects / runs <= 0.065
    assert normal_rejects / runs > 0.08
