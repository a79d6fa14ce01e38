"""A/B analysis of AI assistance: sample-ratio check, difference in means and lift, CUPED, power.

Pure functions on arrays and DataFrames. Standard errors come from the OLS sandwich of
`y ~ 1 + treated`: HC2 (equal to the unpooled Welch/Neyman variance) when units are
independent, CR1 clustered at the unit of assignment when that is coarser than a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

Z95 = float(stats.norm.ppf(0.975))
SRM_ALPHA = 0.001  # the usual threshold: a mismatch this unlikely means the assignment is broken


@dataclass(frozen=True)
class SampleRatio:
    """Observed against expected units per arm, with the chi-square test of the difference."""

    observed: dict[str, int]
    expected: dict[str, float]
    chi2: float
    p_value: float

    @property
    def mismatch(self) -> bool:
        return self.p_value < SRM_ALPHA


def sample_ratio_check(observed: Mapping[str, int], weights: Mapping[str, float]) -> SampleRatio:
    """Chi-square goodness of fit of the units per arm to the configured weights."""
    arms = list(weights)
    counts = np.array([observed.get(arm, 0) for arm in arms], dtype=float)
    shares = np.array([weights[arm] for arm in arms], dtype=float)
    expected = counts.sum() * shares / shares.sum()
    if counts.sum() == 0:
        return SampleRatio({a: 0 for a in arms}, dict.fromkeys(arms, 0.0), 0.0, 1.0)
    chi2, p_value = stats.chisquare(counts, expected)
    return SampleRatio(
        {a: int(c) for a, c in zip(arms, counts, strict=True)},
        {a: float(e) for a, e in zip(arms, expected, strict=True)},
        float(chi2),
        float(p_value),
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

    def as_dict(self) -> dict[str, Any]:
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


def difference_in_means(
    df: pd.DataFrame,
    y: str,
    arm: str = "arm",
    *,
    treatment: str = "ai_shown",
    cluster: str | None = None,
) -> Effect:
    """Mean of `y` under `treatment` minus the rest, with robust (or clustered) SEs and the relative lift."""
    data = df[[y, arm] + ([cluster] if cluster else [])].dropna()
    values = data[y].to_numpy(dtype=float)
    treated = (data[arm] == treatment).to_numpy(dtype=float)
    n_t, n_c = int(treated.sum()), int(len(treated) - treated.sum())
    if min(n_t, n_c) < 2:
        raise ValueError("each arm needs at least two observations")
    beta, cov, groups = _sandwich(values, treated, data[cluster].to_numpy() if cluster else None)
    base, diff = float(beta[0]), float(beta[1])
    se = float(np.sqrt(cov[1, 1]))
    # Delta method for (treatment mean / control mean) - 1 = diff / base.
    grad = np.array([-diff / base**2, 1 / base]) if base else np.array([np.nan, np.nan])
    lift_se = float(np.sqrt(grad @ cov @ grad))
    lift = diff / base if base else float("nan")
    p_value = float(2 * stats.norm.sf(abs(diff / se))) if se > 0 else float("nan")
    return Effect(
        n_control=n_c,
        n_treatment=n_t,
        clusters=groups,
        control_mean=base,
        treatment_mean=base + diff,
        difference=diff,
        se=se,
        ci_low=diff - Z95 * se,
        ci_high=diff + Z95 * se,
        p_value=p_value,
        lift=lift,
        lift_se=lift_se,
        lift_ci_low=lift - Z95 * lift_se,
        lift_ci_high=lift + Z95 * lift_se,
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
