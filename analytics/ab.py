"""A/B analysis of AI assistance: sample-ratio check, difference in means and lift, CUPED, power.

Pure functions on arrays and DataFrames. Standard errors come from the OLS sandwich of
`y ~ 1 + treated`: HC2 (equal to the unpooled Welch/Neyman variance) when units are
independent, CR1 clustered at the unit of assignment when that is coarser than a row.

Clustered inference uses t(G − 1) critical values for G clusters. With fewer than
`WILD_BOOTSTRAP_BELOW` clusters even that over-rejects, so the p-value and the interval of the
difference come from a wild cluster bootstrap with the null imposed (WCR, Cameron, Gelbach &
Miller 2008) and Webb's six-point weights, which stay reliable down to a handful of clusters
(Webb 2014). It is computed here in closed form for this two-column model, which takes
milliseconds; the packages that implement it in general bring a JIT compiler for no gain here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
SRM_ALPHA = 0.001  # the usual threshold: a mismatch this unlikely means the assignment is broken
WILD_BOOTSTRAP_BELOW = 50  # clusters; below this the wild cluster bootstrap gives p-values and intervals
BOOTSTRAP_DRAWS = 9_999
WEBB_POINTS = np.array([-np.sqrt(1.5), -1.0, -np.sqrt(0.5), np.sqrt(0.5), 1.0, np.sqrt(1.5)])


@dataclass(frozen=True)
class SampleRatio:
    """Observed against expected units per arm, with the chi-square test of the difference.

    `unexpected` holds units seen in arms the experiment does not declare: any of them means
    the assignment is broken, whatever the test says about the declared arms.
    """

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float
    unexpected: dict[str, int] = field(default_factory=dict)

    @property
    def mismatch(self) -> bool:
        """Whether the split differs from the declared weights, or traffic reached an undeclared arm."""
        return self.p_value < SRM_ALPHA or any(self.unexpected.values())


def sample_ratio_check(observed: Mapping[str, int], weights: Mapping[str, float]) -> SampleRatio:
    """Chi-square goodness of fit of the units per arm to the configured weights.

    Traffic in an arm outside `weights` fails the check: its expected count is zero.

    :param observed: units per arm as seen
    :param weights: the declared arms and their shares
    """
    arms = list(weights)
    unexpected = {arm: int(n) for arm, n in observed.items() if arm not in weights and n}
    counts = np.array([observed.get(arm, 0) for arm in arms], dtype=float)
    shares = np.array([weights[arm] for arm in arms], dtype=float)
    expected = counts.sum() * shares / shares.sum()
    if counts.sum() == 0:
        return SampleRatio({a: 0 for a in arms}, dict.fromkeys(arms, 0.0), 0.0, 1.0, unexpected)
    chi2, p_value = stats.chisquare(counts, expected)
    return SampleRatio(
        {a: int(c) for a, c in zip(arms, counts, strict=True)},
        {a: float(e) for a, e in zip(arms, expected, strict=True)},
        float(chi2),
        float(p_value),
        unexpected,
    )


@dataclass(frozen=True)
class Effect:
    """Treatment minus control, absolute and relative to the control mean, with 95% intervals."""

    n_control: int
    n_treatment: int
    clusters: int | None
    control_mean: float
    treatment_mean: float
    difference: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    lift: float
    lift_se: float
    lift_ci_low: float
    lift_ci_high: float
    method: str = "HC2 robust standard errors, normal critical values"

    def as_dict(self) -> dict[str, Any]:
        """The effect as plain data (for JSON and the stored run)."""
        return asdict(self)


def _sandwich(
    y: np.ndarray, treated: np.ndarray, clusters: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, int | None]:
    """OLS of y on (1, treated): coefficients and their HC2 or CR1 covariance."""
    x = np.column_stack([np.ones_like(y), treated])
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ (x.T @ y)
    resid = y - x @ beta
    n, k = x.shape
    if clusters is None:
        leverage = np.einsum("ij,jk,ik->i", x, bread, x)
        scores = x * (resid / np.sqrt(1 - leverage))[:, None]
        meat = scores.T @ scores
        return beta, bread @ meat @ bread, None
    codes, uniques = pd.factorize(clusters)
    g = len(uniques)
    if g < 2:
        raise ValueError("clustered standard errors need at least two clusters")
    sums = np.zeros((g, k))
    np.add.at(sums, codes, x * resid[:, None])
    meat = sums.T @ sums
    correction = g / (g - 1) * (n - 1) / (n - k)
    return beta, correction * bread @ meat @ bread, g


def webb_weights(draws: int, clusters: int, seed: int) -> np.ndarray:
    """Webb's six-point weights, one row per bootstrap draw and one column per cluster.

    :param draws: bootstrap draws
    :param clusters: number of clusters
    :param seed: the generator's seed, so an analysis is reproducible
    """
    return np.random.default_rng(seed).choice(WEBB_POINTS, size=(draws, clusters))


def _cluster_sums(codes: np.ndarray, groups: int, values: np.ndarray) -> np.ndarray:
    """Sum the rows of `values` within each cluster."""
    sums = np.zeros((groups, *values.shape[1:]))
    np.add.at(sums, codes, values)
    return sums


def wild_cluster_bootstrap(
    y: np.ndarray, treated: np.ndarray, clusters: np.ndarray, weights: np.ndarray, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Wild cluster restricted bootstrap of the treatment coefficient in y ~ 1 + treated.

    Returns the two-sided p-value of "no difference" and the (1 - alpha) interval found by
    inverting the same test: every null value b0 whose bootstrap p-value exceeds alpha. Each
    draw's t-statistic uses CR1 standard errors, as the observed one does. For a null value b0
    the draws are y* = (restricted fit) + w_g * (restricted residual), and everything a draw
    needs is linear in the cluster sums, so no draw refits a regression.

    :param y: outcome per row
    :param treated: 1 for rows under treatment, else 0
    :param clusters: cluster label per row
    :param weights: draws x clusters bootstrap weights (see `webb_weights`)
    :param alpha: 1 - the interval's level
    """
    codes, uniques = pd.factorize(clusters)
    g = len(uniques)
    x = np.column_stack([np.ones_like(y), treated])
    n, k = x.shape
    bread = np.linalg.inv(x.T @ x)
    beta = bread @ (x.T @ y)
    correction = g / (g - 1) * (n - 1) / (n - k)
    row = bread[1]
    # Observed CR1 standard error of the difference.
    scores = _cluster_sums(codes, g, x * (y - x @ beta)[:, None]) @ row
    se = float(np.sqrt(correction * scores @ scores))
    cross = _cluster_sums(codes, g, x[:, :, None] * x[:, None, :])  # X_g'X_g per cluster
    q = np.einsum("j,gjk,kl->gl", row, cross, bread)  # how each cluster's score moves with the refit
    # Restricted residuals are (y - ȳ) - b0 (t - t̄): keep both parts' cluster sums.
    s_y = _cluster_sums(codes, g, x * (y - y.mean())[:, None])
    s_t = _cluster_sums(codes, g, x * (treated - treated.mean())[:, None])
    c_y, c_t = s_y @ row, s_t @ row
    w_c_y, w_c_t = weights @ c_y, weights @ c_t
    # Each draw's CR1 score per cluster is p - b0 * r; keep the sums of squares as a quadratic in b0.
    p_part = weights * c_y - weights @ s_y @ q.T
    r_part = weights * c_t - weights @ s_t @ q.T
    pp, pr, rr = (p_part**2).sum(axis=1), (p_part * r_part).sum(axis=1), (r_part**2).sum(axis=1)

    def p_value(b0: float) -> float:
        """Bootstrap p-value of the null `difference = b0`."""
        observed = abs((beta[1] - b0) / se) if se > 0 else np.inf
        variance = correction * np.maximum(pp - 2 * b0 * pr + b0 * b0 * rr, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            t_star = (w_c_y - b0 * w_c_t) / np.sqrt(variance)
        return float(np.mean(np.abs(np.nan_to_num(t_star, nan=0.0)) >= observed - 1e-12))

    def bound(direction: float) -> float:
        """Where the bootstrap p-value falls to alpha, walking away from the estimate."""
        step = se if se > 0 else 1.0
        inside, outside = float(beta[1]), float(beta[1]) + direction * step
        while p_value(outside) > alpha:
            inside, outside = outside, outside + direction * step
            step *= 2
        while abs(outside - inside) > 1e-7 * (se if se > 0 else 1.0):
            middle = (inside + outside) / 2
            inside, outside = (middle, outside) if p_value(middle) > alpha else (inside, middle)
        return (inside + outside) / 2

    return p_value(0.0), bound(-1.0), bound(1.0)


def difference_in_means(
    df: pd.DataFrame,
    y: str,
    arm: str = "arm",
    *,
    treatment: str = "ai_shown",
    cluster: str | None = None,
    draws: int = BOOTSTRAP_DRAWS,
    seed: int = 0,
) -> Effect:
    """Mean of `y` under `treatment` minus the rest, with robust (or clustered) SEs and the relative lift.

    Clustered: CR1 standard errors with t(G − 1) critical values, and below
    `WILD_BOOTSTRAP_BELOW` clusters the wild cluster bootstrap's p-value and interval for the
    difference (the lift keeps the delta method with t(G − 1)). `method` says which was used.

    :param df: one row per observation
    :param y: the outcome column
    :param arm: the column naming each row's arm
    :param treatment: the arm value that saw the AI
    :param cluster: the unit of assignment when coarser than a row
    :param draws: bootstrap draws (few clusters only)
    :param seed: bootstrap seed (few clusters only)
    """
    data = df[[y, arm] + ([cluster] if cluster else [])].dropna()
    values = data[y].to_numpy(dtype=float)
    treated = (data[arm] == treatment).to_numpy(dtype=float)
    n_t, n_c = int(treated.sum()), int(len(treated) - treated.sum())
    if min(n_t, n_c) < 2:
        raise ValueError("each arm needs at least two observations")
    labels = data[cluster].to_numpy() if cluster else None
    beta, cov, groups = _sandwich(values, treated, labels)
    base, diff = float(beta[0]), float(beta[1])
    se = float(np.sqrt(cov[1, 1]))
    # Delta method for (treatment mean / control mean) - 1 = diff / base.
    grad = np.array([-diff / base**2, 1 / base]) if base else np.array([np.nan, np.nan])
    lift_se = float(np.sqrt(grad @ cov @ grad))
    lift = diff / base if base else float("nan")
    if groups is None:
        critical = Z95
        p_value = float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else float("nan")
        ci_low, ci_high = diff - critical * se, diff + critical * se
        method = "HC2 robust standard errors, normal critical values"
    else:
        critical = float(stats.t.ppf(0.975, groups - 1))
        p_value = float(2 * stats.t.sf(abs(diff / se), groups - 1)) if se > 0 else float("nan")
        ci_low, ci_high = diff - critical * se, diff + critical * se
        method = f"CR1 standard errors clustered by {groups} units, t({groups - 1}) critical values"
        if groups < WILD_BOOTSTRAP_BELOW:
            assert labels is not None
            weights = webb_weights(draws, groups, seed)
            p_value, ci_low, ci_high = wild_cluster_bootstrap(values, treated, labels, weights)
            method = (
                f"wild cluster bootstrap over {groups} clusters (null imposed, Webb weights, {draws:,} draws); "
                f"SE is CR1, the lift's interval uses t({groups - 1})"
            )
    return Effect(
        n_control=n_c,
        n_treatment=n_t,
        clusters=groups,
        control_mean=base,
        treatment_mean=base + diff,
        difference=diff,
        se=se,
        ci_low=ci_low,
        ci_high=ci_high,
        p_value=p_value,
        lift=lift,
        lift_se=lift_se,
        lift_ci_low=lift - critical * lift_se,
        lift_ci_high=lift + critical * lift_se,
        method=method,
    )


def difference_in_proportions(
    df: pd.DataFrame, y: str, arm: str = "arm", *, treatment: str = "ai_shown", cluster: str | None = None
) -> Effect:
    """Difference of two rates (a 0/1 outcome): the robust SE is the unpooled binomial one."""
    values = df[y].dropna()
    if not values.isin([0, 1, True, False]).all():
        raise ValueError(f"{y} must be 0 or 1 for a proportion")
    return difference_in_means(df, y, arm, treatment=treatment, cluster=cluster)


@dataclass(frozen=True)
class CupedEffect:
    """The effect on the CUPED-adjusted outcome, next to the unadjusted one."""

    theta: float
    variance_reduction: float  # 1 - Var(adjusted) / Var(raw) of the outcome, pooled over arms
    adjusted: Effect
    unadjusted: Effect

    @property
    def estimate_variance_reduction(self) -> float:
        """1 - Var(adjusted effect) / Var(unadjusted effect): what CUPED buys in precision.

        With clustered assignment this can far exceed the row-level reduction, because a
        unit-level pre-period covariate removes exactly the between-unit variance that
        dominates a clustered standard error.
        """
        return 1 - (self.adjusted.se / self.unadjusted.se) ** 2 if self.unadjusted.se > 0 else 0.0


def cuped(
    df: pd.DataFrame,
    y: str,
    covariate: str,
    arm: str = "arm",
    *,
    treatment: str = "ai_shown",
    cluster: str | None = None,
) -> CupedEffect:
    """Remove the part of `y` a pre-period covariate predicts, then compare arms (Deng et al. 2013).

    The covariate must be measured before assignment; rows without it use its mean, which
    keeps them in the comparison without adjustment.
    """
    cols = [y, covariate, arm] + ([cluster] if cluster else [])
    data = df[cols].dropna(subset=[y, arm]).copy()
    x = data[covariate].astype(float)
    x = x.fillna(x.mean())
    values = data[y].astype(float)
    var_x = float(x.var())
    theta = float(np.cov(values, x)[0, 1] / var_x) if var_x > 0 else 0.0
    data["_adjusted"] = values - theta * (x - x.mean())
    reduction = 1 - float(data["_adjusted"].var() / values.var()) if values.var() > 0 else 0.0
    return CupedEffect(
        theta=theta,
        variance_reduction=reduction,
        adjusted=difference_in_means(data, "_adjusted", arm, treatment=treatment, cluster=cluster),
        unadjusted=difference_in_means(data, y, arm, treatment=treatment, cluster=cluster),
    )


@dataclass(frozen=True)
class Plan:
    """A planned two-arm test: what it can detect, or how many units it needs."""

    sd: float
    alpha: float
    power: float
    treatment_share: float
    design_effect: float
    n_total: float
    minimum_detectable_effect: float


def _multiplier(alpha: float, power: float) -> float:
    return float(stats.norm.ppf(1 - alpha / 2) + stats.norm.ppf(power))


def minimum_detectable_effect(
    sd: float,
    n_total: float,
    *,
    treatment_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    design_effect: float = 1.0,
) -> Plan:
    """Smallest true difference a two-sided z-test finds with the given power.

    `design_effect` inflates the variance for clustered assignment: 1 + (m - 1) * ICC for
    clusters of m rows.
    """
    if not 0 < treatment_share < 1 or n_total <= 0 or sd <= 0:
        raise ValueError("need sd > 0, n_total > 0 and 0 < treatment_share < 1")
    se = sd * np.sqrt(design_effect / (n_total * treatment_share * (1 - treatment_share)))
    return Plan(sd, alpha, power, treatment_share, design_effect, float(n_total), float(_multiplier(alpha, power) * se))


def sample_size(
    sd: float,
    effect: float,
    *,
    treatment_share: float = 0.5,
    alpha: float = 0.05,
    power: float = 0.8,
    design_effect: float = 1.0,
) -> Plan:
    """Total units needed to detect a true difference of `effect` with the given power."""
    if effect == 0 or sd <= 0 or not 0 < treatment_share < 1:
        raise ValueError("need effect != 0, sd > 0 and 0 < treatment_share < 1")
    n = (_multiplier(alpha, power) * sd / effect) ** 2 * design_effect / (treatment_share * (1 - treatment_share))
    return Plan(sd, alpha, power, treatment_share, design_effect, float(np.ceil(n)), abs(float(effect)))


def proportion_sd(rate: float) -> float:
    """Standard deviation of a 0/1 outcome at a baseline rate, for planning tests on rates."""
    return float(np.sqrt(rate * (1 - rate)))
