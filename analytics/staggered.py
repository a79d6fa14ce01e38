"""Staggered rollouts: Callaway & Sant'Anna (2021) group-time average treatment effects.

Pure functions on a balanced panel DataFrame (one row per unit and period): never-treated or
not-yet-treated comparison units, a varying base period, the doubly robust, outcome-regression
and inverse-probability-weighting estimators of each 2x2 comparison (Sant'Anna & Zhao 2020;
identical without covariates), analytic influence-function standard errors, the simple / group
/ dynamic / calendar aggregations (with the influence function of the estimated group
weights), and the pre-trend Wald test. The numbers reproduce R's `did` package (see
tests/unit/analytics/test_staggered.py); covariates are taken from each comparison's base period.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

CONTROLS = ("never", "not_yet")
METHODS = ("dr", "reg", "ipw")
KINDS = ("simple", "group", "dynamic", "calendar")


@dataclass(frozen=True)
class Aggregate:
    """An aggregation of the group-time effects: per-key effects and the overall one."""

    kind: str
    table: pd.DataFrame  # columns key, att, se (empty for simple)
    overall_att: float
    overall_se: float
    influence: np.ndarray | None = field(default=None, repr=False)  # units × keys, for uniform bands


@dataclass(frozen=True)
class PreTest:
    """Wald test that every pre-treatment group-time effect is zero (parallel trends)."""

    statistic: float
    df: int
    p_value: float


@dataclass(frozen=True)
class Bootstrap:
    """Bootstrap standard errors and a simultaneous (uniform) band for every group-time effect."""

    table: pd.DataFrame  # cohort, time, att, se, band_low, band_high
    critical_value: float
    draws: int


@dataclass
class AttGt:
    """Group-time effects with their influence functions (n units × cells)."""

    cells: pd.DataFrame  # columns cohort, time, att, se
    influence: np.ndarray
    cohort_of_unit: np.ndarray
    _cache: dict[str, Aggregate] = field(default_factory=dict)
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.cohort_of_unit)

    def _se(self, inf: np.ndarray) -> float:
        """Analytic standard error from a unit-level influence function."""
        return float(np.sqrt(np.mean(inf**2) / self.n))

    def _group_probabilities(self) -> dict[int, float]:
        """P(G = g) for each treated cohort."""
        return {int(g): float(np.mean(self.cohort_of_unit == g)) for g in self.cells["cohort"].unique()}

    def _cohort_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct cohorts and each unit's position among them (computed once)."""
        if "codes" not in self._codes:
            self._codes["codes"] = np.unique(self.cohort_of_unit, return_inverse=True)
        return self._codes["codes"]

    def _weight_influence(self, groups: np.ndarray, weights: np.ndarray, att: np.ndarray) -> np.ndarray:
        """Influence of estimating the cohort-share weights, applied to `att` (did's wif @ att), per unit.

        The indicator matrix 1{G_i = group_k} is never built: its products with a vector are
        lookups by each unit's cohort.
        """
        total = weights.sum()
        by_cohort_att: dict[int, float] = {}
        by_cohort_count: dict[int, int] = {}
        for g, a in zip(groups.tolist(), att.tolist(), strict=True):
            by_cohort_att[g] = by_cohort_att.get(g, 0.0) + a
            by_cohort_count[g] = by_cohort_count.get(g, 0) + 1
        cohorts, position = self._cohort_codes()
        indicator_att = np.array([by_cohort_att.get(int(c), 0.0) for c in cohorts])[position]
        indicator_count = np.array([by_cohort_count.get(int(c), 0) for c in cohorts], dtype=float)[position]
        if1 = (indicator_att - weights @ att) / total
        if2 = (indicator_count - total) * (weights @ att) / total**2
        return if1 - if2

    def _weighted(self, which: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted average of cells (weights estimated as group shares) and its influence function."""
        att = self.cells["att"].to_numpy()[which]
        share = weights / weights.sum()
        inf = self.influence[:, which] @ share
        groups = self.cells["cohort"].to_numpy()[which]
        return float(share @ att), inf + self._weight_influence(groups, weights, att)

    def aggregate(self, kind: str) -> Aggregate:
        """Aggregate to `simple`, `group` (by cohort), `dynamic` (by event time) or `calendar` (by period).

        :param kind: one of simple, group, dynamic, calendar
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if kind not in self._cache:
            self._cache[kind] = getattr(self, f"_{kind}")()
        return self._cache[kind]

    def _post(self) -> np.ndarray:
        """Cells at or after their cohort's first treated period."""
        return (self.cells["time"] >= self.cells["cohort"]).to_numpy()

    def _pg(self) -> np.ndarray:
        """Each cell's cohort share."""
        probabilities = self._group_probabilities()
        return np.array([probabilities[int(g)] for g in self.cells["cohort"]])

    def _simple(self) -> Aggregate:
        """Post-treatment cells weighted by cohort size."""
        which = np.flatnonzero(self._post())
        att, inf = self._weighted(which, self._pg()[which])
        return Aggregate("simple", pd.DataFrame(columns=["key", "att", "se"]), att, self._se(inf))

    def _group(self) -> Aggregate:
        """Average post-treatment effect per cohort, then cohorts weighted by size."""
        post = self._post()
        cohorts = sorted(int(g) for g in self.cells["cohort"].unique())
        atts, infs = [], []
        for g in cohorts:
            which = np.flatnonzero(post & (self.cells["cohort"] == g).to_numpy())
            atts.append(float(self.cells["att"].to_numpy()[which].mean()))
            infs.append(self.influence[:, which].mean(axis=1))
        att_g, inf_g = np.array(atts), np.column_stack(infs)
        probabilities = self._group_probabilities()
        weights = np.array([probabilities[g] for g in cohorts])
        inf = inf_g @ (weights / weights.sum()) + self._weight_influence(np.array(cohorts), weights, att_g)
        table = pd.DataFrame({"key": cohorts, "att": att_g, "se": [self._se(inf_g[:, i]) for i in range(len(cohorts))]})
        return Aggregate("group", table, float(att_g @ weights / weights.sum()), self._se(inf))

    def _dynamic(self) -> Aggregate:
        """By event time e = time - cohort (cohorts weighted by size); overall: mean over e >= 0."""
        event = (self.cells["time"] - self.cells["cohort"]).to_numpy()
        pg = self._pg()
        rows, infs = [], []
        for e in sorted(set(event.tolist())):
            which = np.flatnonzero(event == e)
            att, inf = self._weighted(which, pg[which])
            rows.append((int(e), att, self._se(inf)))
            infs.append(inf)
        table = pd.DataFrame(rows, columns=["key", "att", "se"])
        after = (table["key"] >= 0).to_numpy()
        by_event = np.column_stack(infs)
        inf = by_event[:, after].mean(axis=1)
        return Aggregate("dynamic", table, float(table.loc[after, "att"].mean()), self._se(inf), by_event)

    def _calendar(self) -> Aggregate:
        """By period among cohorts already treated (weighted by size); overall: mean over periods."""
        post = self._post()
        pg = self._pg()
        times = self.cells["time"].to_numpy()
        rows, infs = [], []
        for t in sorted(set(times[post].tolist())):
            which = np.flatnonzero(post & (times == t))
            att, inf = self._weighted(which, pg[which])
            rows.append((int(t), att, self._se(inf)))
            infs.append(inf)
        table = pd.DataFrame(rows, columns=["key", "att", "se"])
        inf = np.column_stack(infs).mean(axis=1)
        return Aggregate("calendar", table, float(table["att"].mean()), self._se(inf))

    def bootstrap(self, draws: int = 999, seed: int = 0, alpha: float = 0.05) -> Bootstrap:
        """Multiplier bootstrap clustered by unit: standard errors and a uniform confidence band.

        Each draw perturbs every unit's influence function by one Mammen weight, so effects of
        the same unit move together. The band's critical value covers all cells at once.

        :param draws: number of bootstrap draws
        :param seed: random seed (results are reproducible)
        :param alpha: 1 - coverage of the band
        """
        se, critical = _multiplier_bootstrap(self.influence, draws, seed, alpha)
        att = self.cells["att"].to_numpy()
        table = self.cells[["cohort", "time", "att"]].assign(
            se=se, band_low=att - critical * se, band_high=att + critical * se
        )
        return Bootstrap(table=table, critical_value=critical, draws=draws)

    def event_study(self, draws: int = 999, seed: int = 0, alpha: float = 0.05) -> tuple[pd.DataFrame, float]:
        """Effects by event time with pointwise analytic intervals and a bootstrap uniform band.

        Returns the table (key, att, se, ci_low, ci_high, band_low, band_high) and the band's
        critical value; the band covers every event time at once with probability 1 - alpha.
        """
        dynamic = self.aggregate("dynamic")
        assert dynamic.influence is not None
        boot_se, critical = _multiplier_bootstrap(dynamic.influence, draws, seed, alpha)
        z = float(stats.norm.ppf(1 - alpha / 2))
        table = dynamic.table.assign(
            ci_low=dynamic.table["att"] - z * dynamic.table["se"],
            ci_high=dynamic.table["att"] + z * dynamic.table["se"],
            band_low=dynamic.table["att"] - critical * boot_se,
            band_high=dynamic.table["att"] + critical * boot_se,
        )
        return table, critical

    def pretest_uniform(self, draws: int = 999, seed: int = 0) -> PreTest:
        """Sup-t test that every pre-treatment event-time effect is zero (bootstrap, clustered by unit).

        Unlike the Wald test it never inverts a covariance matrix, so it stays usable when there
        are few units for the number of pre-periods. `statistic` is the largest |effect| / SE.
        """
        dynamic = self.aggregate("dynamic")
        assert dynamic.influence is not None
        before = np.flatnonzero((dynamic.table["key"] < 0).to_numpy())
        if len(before) == 0:
            raise ValueError("there are no pre-treatment periods to test")
        se, t_max = _sup_t_draws(dynamic.influence[:, before], draws, seed)
        observed = float(np.max(np.abs(dynamic.table["att"].to_numpy()[before]) / se))
        return PreTest(observed, len(before), float(np.mean(t_max >= observed)))

    def pretest(self) -> PreTest:
        """Wald test of all pre-treatment effects being zero, with their joint covariance."""
        pre = np.flatnonzero(~self._post())
        if len(pre) == 0:
            raise ValueError("there are no pre-treatment periods to test")
        att = self.cells["att"].to_numpy()[pre]
        covariance = self.influence[:, pre].T @ self.influence[:, pre] / self.n
        # With few units the covariance can be singular (more pre-periods than the units can
        # identify): test only the directions it identifies, with that many degrees of freedom.
        values, vectors = np.linalg.eigh(covariance)
        kept = values > values.max() * 1e-10
        projected = vectors[:, kept].T @ att
        statistic = float(self.n * np.sum(projected**2 / values[kept]))
        rank = int(kept.sum())
        return PreTest(statistic, rank, float(stats.chi2.sf(statistic, rank)))


def _multiplier_bootstrap(influence: np.ndarray, draws: int, seed: int, alpha: float) -> tuple[np.ndarray, float]:
    """Bootstrap SEs (scaled IQR, as R's did) of each column and the sup-t critical value across columns."""
    se, t_max = _sup_t_draws(influence, draws, seed)
    return se, float(np.quantile(t_max, 1 - alpha))


def _sup_t_draws(influence: np.ndarray, draws: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Multiplier-bootstrap SE of each column, and each draw's largest |deviation| / SE across columns."""
    if draws < 99:
        raise ValueError("use at least 99 draws")
    n = influence.shape[0]
    rng = np.random.default_rng(seed)
    root5 = np.sqrt(5)
    low_prob = (root5 + 1) / (2 * root5)
    weights = np.where(rng.random((draws, n)) < low_prob, -(root5 - 1) / 2, (root5 + 1) / 2)
    deviations = weights @ influence / n  # draws × columns: bootstrap estimate minus estimate
    q75, q25 = np.quantile(deviations, [0.75, 0.25], axis=0)
    se = (q75 - q25) / (stats.norm.ppf(0.75) - stats.norm.ppf(0.25))
    usable = se > np.sqrt(np.finfo(float).eps) * 10
    if not usable.any():  # no sampling spread at all (e.g. one unit per group): nothing to widen
        return se, np.zeros(draws)
    return se, np.max(np.abs(deviations[:, usable]) / se[usable], axis=1)


def _validate(
    df: pd.DataFrame, y: str, unit: str, time: str, cohort: str, covariates: list[str] | None = None
) -> pd.DataFrame:
    """A balanced panel sorted by unit and time, or a ValueError saying what is wrong."""
    covariates = covariates or []
    missing = [c for c in (y, unit, time, cohort, *covariates) if c not in df.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")
    data = df[[unit, time, cohort, y, *covariates]]
    numeric = data[[y, *covariates]].to_numpy(float)
    if data[[time, cohort]].isna().any().any() or not np.isfinite(numeric).all():
        raise ValueError(f"{', '.join([y, *covariates])}, {time} and {cohort} must be numbers with no gaps")
    return data


@dataclass(frozen=True)
class _Panel:
    """A balanced panel as unit × period arrays."""

    periods: np.ndarray
    cohorts: np.ndarray  # per unit
    values: dict[str, np.ndarray]  # column -> units × periods


def _reshape(data: pd.DataFrame, unit: str, time: str, cohort: str, columns: list[str]) -> _Panel:
    """Check the panel is balanced with a fixed cohort per unit, and lay it out as arrays (one pass)."""
    unit_codes, _ = pd.factorize(data[unit], sort=True)
    periods, time_codes = np.unique(data[time].to_numpy(), return_inverse=True)
    n_units, n_periods = unit_codes.max() + 1, len(periods)
    cells = np.bincount(unit_codes * n_periods + time_codes, minlength=n_units * n_periods)
    if (cells > 1).any():
        raise ValueError("each unit may appear once per period")
    if (cells == 0).any():
        raise ValueError("the panel must be balanced: every unit observed in every period")

    def grid(column: str) -> np.ndarray:
        out = np.empty((n_units, n_periods))
        out[unit_codes, time_codes] = data[column].to_numpy(float)
        return out

    cohort_grid = grid(cohort)
    if (cohort_grid != cohort_grid[:, :1]).any():
        raise ValueError(f"{cohort} must not change within a unit")
    cohorts = cohort_grid[:, 0]
    if not set(np.unique(cohorts)) - {0} <= set(periods.tolist()):
        raise ValueError(f"{cohort} must be 0 (never treated) or one of the periods")
    return _Panel(periods, cohorts, {c: grid(c) for c in columns})


def att_gt(
    df: pd.DataFrame,
    y: str,
    unit: str,
    time: str,
    cohort: str,
    control: str = "never",
    covariates: list[str] | None = None,
    method: str = "dr",
) -> AttGt:
    """Callaway & Sant'Anna group-time effects ATT(g, t) with a varying base period.

    :param df: balanced panel, one row per unit and period
    :param y: outcome column
    :param unit: unit id column
    :param time: period column (numbers)
    :param cohort: first treated period of the unit, 0 for never treated
    :param control: "never" (never-treated units) or "not_yet" (also units not yet treated by then)
    :param covariates: conditioning covariates (not supported yet: pass None)
    :param method: "dr", "reg" or "ipw" (identical without covariates)
    """
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    covariates = list(covariates or [])
    data = _validate(df, y, unit, time, cohort, covariates)
    shaped = _reshape(data, unit, time, cohort, [y, *covariates])
    periods, groups, outcome = shaped.periods, shaped.cohorts, shaped.values[y]
    by_period = {c: shaped.values[c] for c in covariates}
    n = len(groups)
    cohorts = sorted(int(g) for g in set(groups) - {0} if g > periods[0])
    if not cohorts:
        raise ValueError("no cohort is treated after the first period")
    if control == "never" and not (groups == 0).any():
        raise ValueError("there are no never-treated units; use control='not_yet'")
    index = {t: i for i, t in enumerate(periods)}
    rows: list[tuple[int, int, float, float]] = []
    # Cells × units, so each cell's influence function is one contiguous row; transposed at the end.
    influence = np.zeros((len(cohorts) * (len(periods) - 1), n))
    by_time = np.ascontiguousarray(outcome.T)  # periods × units: a period's outcomes are contiguous
    never = groups == 0
    for g in cohorts:
        treated = groups == g
        treated_weight = treated.astype(float)
        n_treated = treated_weight.sum()
        for k in range(1, len(periods)):
            t = periods[k]
            base = periods[index[g] - 1] if t >= g else periods[k - 1]
            # Not yet treated: first treated after both the period and its base period.
            comparison = never | ((groups > max(t, base)) & ~treated) if control == "not_yet" else never
            if not comparison.any():
                continue
            column = influence[len(rows)]
            if covariates:
                subset = treated | comparison
                change = outcome[subset, index[t]] - outcome[subset, index[base]]
                d = treated[subset].astype(float)
                x = np.column_stack([np.ones(len(d)), *(by_period[c][subset, index[base]] for c in covariates)])
                att, psi = ESTIMATORS[method](d, change, x)
                column[subset] = psi * n / subset.sum()
            else:
                # The difference in mean changes, on whole arrays (no subsetting): its influence is
                # n/n1 (dy - mean1) on treated units and -n/n0 (dy - mean0) on comparison units.
                change = by_time[index[t]] - by_time[index[base]]
                comparison_weight = comparison.astype(float)
                n_comparison = comparison_weight.sum()
                mean1 = treated_weight @ change / n_treated
                mean0 = comparison_weight @ change / n_comparison
                att = float(mean1 - mean0)
                np.multiply(treated_weight, (change - mean1) * (n / n_treated), out=column)
                column -= comparison_weight * (change - mean0) * (n / n_comparison)
            rows.append((g, int(t), att, float(np.sqrt(column @ column / n) / np.sqrt(n))))
    cells = pd.DataFrame(rows, columns=["cohort", "time", "att", "se"])
    return AttGt(cells=cells, influence=influence[: len(rows)].T, cohort_of_unit=groups)


def _difference_in_means(d: np.ndarray, dy: np.ndarray) -> tuple[float, np.ndarray]:
    """Without covariates every estimator is the difference in mean changes; its influence function."""
    p = d.mean()
    mu1, mu0 = dy[d == 1].mean(), dy[d == 0].mean()
    return float(mu1 - mu0), d * (dy - mu1) / p - (1 - d) * (dy - mu0) / (1 - p)


def _ols(d: np.ndarray, dy: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Outcome regression on the comparison units: fitted changes for everyone, and its linear representation."""
    n = len(d)
    weights = 1 - d
    beta = np.linalg.solve((weights[:, None] * x).T @ x, (weights[:, None] * x).T @ dy)
    fitted = x @ beta
    xpx_inv = np.linalg.inv((weights[:, None] * x).T @ x / n)
    return fitted, (weights * (dy - fitted))[:, None] * x @ xpx_inv


def _logit(d: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Propensity score by logistic regression (Newton steps), and its linear representation."""
    n = len(d)
    beta = np.zeros(x.shape[1])
    for _ in range(100):
        p = 1 / (1 + np.exp(-x @ beta))
        step = np.linalg.solve(((p * (1 - p))[:, None] * x).T @ x, x.T @ (d - p))
        beta += step
        if np.max(np.abs(step)) < 1e-12:
            break
    p = 1 / (1 + np.exp(-x @ beta))
    hessian_inv = np.linalg.inv(((p * (1 - p))[:, None] * x).T @ x / n)
    return np.minimum(p, 1 - 1e-6), ((d - p)[:, None] * x) @ hessian_inv


def _reg(d: np.ndarray, dy: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Outcome-regression DiD (Heckman, Ichimura & Todd): ATT and its influence function."""
    fitted, ols = _ols(d, dy, x)
    eta_treat = np.mean(d * dy) / np.mean(d)
    eta_cont = np.mean(d * fitted) / np.mean(d)
    inf_treat = (d * dy - d * eta_treat) / np.mean(d)
    inf_cont = (d * fitted - d * eta_cont + ols @ np.mean(d[:, None] * x, axis=0)) / np.mean(d)
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def _ipw(d: np.ndarray, dy: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Standardised inverse-probability-weighted DiD (Abadie): ATT and its influence function."""
    ps, logit = _logit(d, x)
    w_treat, w_cont = d, ps * (1 - d) / (1 - ps)
    eta_treat = np.mean(w_treat * dy) / np.mean(w_treat)
    eta_cont = np.mean(w_cont * dy) / np.mean(w_cont)
    inf_treat = (w_treat * dy - w_treat * eta_treat) / np.mean(w_treat)
    m2 = np.mean((w_cont * (dy - eta_cont))[:, None] * x, axis=0)
    inf_cont = (w_cont * dy - w_cont * eta_cont + logit @ m2) / np.mean(w_cont)
    return float(eta_treat - eta_cont), inf_treat - inf_cont


def _dr(d: np.ndarray, dy: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
    """Doubly robust DiD (Sant'Anna & Zhao 2020, panel data): ATT and its influence function."""
    ps, logit = _logit(d, x)
    fitted, ols = _ols(d, dy, x)
    w_treat, w_cont = d, ps * (1 - d) / (1 - ps)
    residual = dy - fitted
    eta_treat = np.mean(w_treat * residual) / np.mean(w_treat)
    eta_cont = np.mean(w_cont * residual) / np.mean(w_cont)
    inf_treat = (w_treat * residual - w_treat * eta_treat - ols @ np.mean(w_treat[:, None] * x, axis=0)) / np.mean(
        w_treat
    )
    m2 = np.mean((w_cont * (residual - eta_cont))[:, None] * x, axis=0)
    m3 = np.mean(w_cont[:, None] * x, axis=0)
    inf_cont = (w_cont * residual - w_cont * eta_cont + logit @ m2 - ols @ m3) / np.mean(w_cont)
    return float(eta_treat - eta_cont), inf_treat - inf_cont


ESTIMATORS = {"reg": _reg, "ipw": _ipw, "dr": _dr}


def twfe(df: pd.DataFrame, y: str, unit: str, time: str, cohort: str) -> tuple[float, float]:
    """The naive two-way fixed-effects estimate (unit and period effects, one treated dummy).

    Biased when effects differ across cohorts or over time: shown only as a labelled comparison.
    Returns the coefficient and its standard error clustered by unit.
    """
    data = _validate(df, y, unit, time, cohort)
    treated = ((data[cohort] > 0) & (data[time] >= data[cohort])).astype(float)

    # Within transformation for a balanced panel: subtract unit and period means, add the grand mean.
    def demean(values: pd.Series) -> np.ndarray:
        frame = pd.DataFrame({"v": values.to_numpy(float), "u": data[unit].to_numpy(), "t": data[time].to_numpy()})
        return (
            frame["v"]
            - frame.groupby("u")["v"].transform("mean")
            - frame.groupby("t")["v"].transform("mean")
            + frame["v"].mean()
        ).to_numpy()

    x, yy = demean(treated), demean(data[y])
    beta = float(x @ yy / (x @ x))
    residual = yy - beta * x
    scores = pd.Series(x * residual).groupby(data[unit].to_numpy()).sum().to_numpy()
    units, periods = data[unit].nunique(), data[time].nunique()
    if len(yy) - 1 - (units + periods - 1) <= 0:
        raise ValueError("too few units and periods for the two-way fixed-effects comparison")
    dof = units / (units - 1) * (len(yy) - 1) / (len(yy) - 1 - (units + periods - 1))
    return beta, float(np.sqrt(dof * (scores @ scores)) / (x @ x))
