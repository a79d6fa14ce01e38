"""The results of a staggered-rollout analysis: group-time effects, their aggregations, pre-test and bootstrap."""

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
    """Group-time effects with their influence functions (n units × cells).

    A cell that could not be estimated (see `warnings`) has NaN effect and standard error and a
    zero influence function; every aggregation and test leaves it out, as R's `did` does with
    `na.rm = TRUE`. Units (rows of `influence`, `cohort_of_unit`) are in cohort order, after
    dropping units treated from the first period.
    """

    cells: pd.DataFrame  # columns cohort, time, att, se
    influence: np.ndarray
    cohort_of_unit: np.ndarray
    warnings: list[str] = field(default_factory=list)  # what was dropped, recoded or left out, and why
    _cache: dict[str, Aggregate] = field(default_factory=dict)
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    _linear: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.cohort_of_unit)

    def _cohort_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct cohorts and each unit's position among them (computed once, by hashing)."""
        if "codes" not in self._codes:
            cohorts = np.sort(pd.unique(self.cohort_of_unit)).astype(float)
            self._codes["codes"] = cohorts, np.searchsorted(cohorts, self.cohort_of_unit)
        return self._codes["codes"]

    def _moments(self) -> tuple[np.ndarray, np.ndarray]:
        """Q = Σ_i ψ_i ψ_i' over units (cells × cells) and each cell's influence summed by cohort (cells × cohorts).

        Every aggregate's influence function is Σ_j c_j ψ_j plus a term constant within a cohort
        (the estimated cohort shares), so its variance follows from Q and these sums alone: no
        unit-length vector is built per aggregate.
        """
        if "moments" not in self._codes:
            rows = self.influence.T  # cells × units
            cohorts, position = self._cohort_codes()
            if np.all(position[1:] >= position[:-1]):  # units in cohort order, as att_gt lays them out
                starts = np.searchsorted(position, np.arange(len(cohorts)))
                sums = np.add.reduceat(rows, starts, axis=1)
            else:
                sums = np.column_stack([rows[:, position == k].sum(axis=1) for k in range(len(cohorts))])
            self._codes["moments"] = rows @ rows.T, sums
        return self._codes["moments"]

    def _se(self, c: np.ndarray, u: np.ndarray) -> float:
        """Analytic standard error of the influence function Σ_j c_j ψ_j + u[cohort of the unit]."""
        gram, sums = self._moments()
        counts = np.bincount(self._cohort_codes()[1], minlength=len(u))
        total = c @ gram @ c + 2 * c @ sums @ u + counts @ u**2
        return float(np.sqrt(max(total, 0.0)) / self.n)

    def _group_probabilities(self) -> dict[float, float]:
        """P(G = g) for each treated cohort."""
        cohorts, position = self._cohort_codes()
        counts = np.bincount(position, minlength=len(cohorts)) / self.n
        shares = dict(zip(cohorts.tolist(), counts.tolist(), strict=True))
        return {float(g): shares[float(g)] for g in self.cells["cohort"].unique()}

    def _weight_influence(self, groups: np.ndarray, weights: np.ndarray, att: np.ndarray) -> np.ndarray:
        """Influence of estimating the cohort-share weights (did's wif @ att), as a value per cohort.

        With T = Σ weights and wa = Σ weights·att, did's two terms reduce to
        (Σ_{k in G_i} att_k - #{k in G_i}·wa/T) / T for a unit i: one value per cohort.
        """
        total = weights.sum()
        cohorts, _ = self._cohort_codes()
        per_cohort = np.zeros(len(cohorts))
        np.add.at(per_cohort, np.searchsorted(cohorts, groups.astype(float)), att - weights @ att / total)
        return np.asarray(per_cohort / total)

    def _weighted(self, which: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """Weighted average of cells (weights estimated as group shares): estimate, cell coefficients, cohort term."""
        att = self.cells["att"].to_numpy()[which]
        share = weights / weights.sum()
        c = np.zeros(len(self.cells))
        c[which] = share
        groups = self.cells["cohort"].to_numpy()[which]
        return float(share @ att), c, self._weight_influence(groups, weights, att)

    def _influence(self, kind: str) -> np.ndarray:
        """Units × keys influence functions of an aggregation's per-key effects (for bootstrap bands)."""
        self.aggregate(kind)
        c, u = self._linear[kind]
        return np.asarray(self.influence @ c + u[self._cohort_codes()[1]])

    def aggregate(self, kind: str) -> Aggregate:
        """Aggregate to `simple`, `group` (by cohort), `dynamic` (by event time) or `calendar` (by period).

        :param kind: one of simple, group, dynamic, calendar
        """
        if kind not in KINDS:
            raise ValueError(f"kind must be one of {', '.join(KINDS)}")
        if kind not in self._cache:
            if not (self._valid() & self._post()).any():
                raise ValueError("no post-treatment effect could be estimated (see the warnings)")
            self._cache[kind] = getattr(self, f"_{kind}")()
        return self._cache[kind]

    def _valid(self) -> np.ndarray:
        """Cells that were estimated (not NA)."""
        return np.asarray(np.isfinite(self.cells["att"].to_numpy()))

    def _post(self) -> np.ndarray:
        """Cells at or after their cohort's first treated period."""
        return np.asarray((self.cells["time"] >= self.cells["cohort"]).to_numpy())

    def _pg(self) -> np.ndarray:
        """Each cell's cohort share."""
        probabilities = self._group_probabilities()
        return np.array([probabilities[float(g)] for g in self.cells["cohort"]])

    def _by_key(self, kind: str, keys: np.ndarray, eligible: np.ndarray) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
        """Per key, the eligible cells weighted by cohort size: the table and each key's (c, u) columns."""
        pg = self._pg()
        rows, cs, us = [], [], []
        for key in sorted(set(keys[eligible].tolist())):
            which = np.flatnonzero(eligible & (keys == key))
            att, c, u = self._weighted(which, pg[which])
            rows.append((key, att, self._se(c, u)))
            cs.append(c)
            us.append(u)
        c_all, u_all = np.column_stack(cs), np.column_stack(us)
        self._linear[kind] = c_all, u_all
        return pd.DataFrame(rows, columns=["key", "att", "se"]), c_all, u_all

    def _simple(self) -> Aggregate:
        """Post-treatment cells weighted by cohort size."""
        which = np.flatnonzero(self._post() & self._valid())
        att, c, u = self._weighted(which, self._pg()[which])
        return Aggregate("simple", pd.DataFrame(columns=["key", "att", "se"]), att, self._se(c, u))

    def _group(self) -> Aggregate:
        """Average post-treatment effect per cohort, then cohorts weighted by size."""
        post = self._post() & self._valid()
        cohort_of_cell = self.cells["cohort"].to_numpy()
        cohorts = sorted(set(cohort_of_cell[post].tolist()))  # cohorts with an estimated post-treatment effect
        no_shares = np.zeros(len(self._cohort_codes()[0]))
        atts, cs = [], []
        for g in cohorts:
            which = np.flatnonzero(post & (cohort_of_cell == g))
            atts.append(float(self.cells["att"].to_numpy()[which].mean()))
            c = np.zeros(len(self.cells))
            c[which] = 1 / len(which)
            cs.append(c)
        att_g, c_g = np.array(atts), np.column_stack(cs)
        self._linear["group"] = c_g, np.zeros((len(no_shares), len(cohorts)))
        probabilities = self._group_probabilities()
        weights = np.array([probabilities[float(g)] for g in cohorts])
        c = c_g @ (weights / weights.sum())
        u = self._weight_influence(np.array(cohorts), weights, att_g)
        table = pd.DataFrame(
            {"key": cohorts, "att": att_g, "se": [self._se(c_g[:, i], no_shares) for i in range(len(cohorts))]}
        )
        return Aggregate("group", table, float(att_g @ weights / weights.sum()), self._se(c, u))

    def _dynamic(self) -> Aggregate:
        """By event time e = time - cohort (cohorts weighted by size); overall: mean over e >= 0."""
        event = (self.cells["time"] - self.cells["cohort"]).to_numpy()
        table, c, u = self._by_key("dynamic", event, self._valid())
        after = (table["key"] >= 0).to_numpy()
        overall_se = self._se(c[:, after].mean(axis=1), u[:, after].mean(axis=1))
        return Aggregate("dynamic", table, float(table.loc[after, "att"].mean()), overall_se)

    def _calendar(self) -> Aggregate:
        """By period among cohorts already treated (weighted by size); overall: mean over periods."""
        times = self.cells["time"].to_numpy()
        table, c, u = self._by_key("calendar", times, self._post() & self._valid())
        return Aggregate("calendar", table, float(table["att"].mean()), self._se(c.mean(axis=1), u.mean(axis=1)))

    def bootstrap(self, draws: int = 999, seed: int = 0, alpha: float = 0.05) -> Bootstrap:
        """Multiplier bootstrap clustered by unit: standard errors and a uniform confidence band.

        Each draw perturbs every unit's influence function by one Mammen weight, so effects of
        the same unit move together. The band's critical value covers all cells at once.

        :param draws: number of bootstrap draws
        :param seed: random seed (results are reproducible)
        :param alpha: 1 - coverage of the band
        """
        valid = self._valid()
        se = np.full(len(valid), np.nan)
        se[valid], critical = _multiplier_bootstrap(self.influence[:, valid], draws, seed, alpha)
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
        boot_se, critical = _multiplier_bootstrap(self._influence("dynamic"), draws, seed, alpha)
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
        before = np.flatnonzero((dynamic.table["key"] < 0).to_numpy())
        if len(before) == 0:
            raise ValueError("there are no pre-treatment periods to test")
        se, t_max = _sup_t_draws(self._influence("dynamic")[:, before], draws, seed)
        observed = float(np.max(np.abs(dynamic.table["att"].to_numpy()[before]) / se))
        return PreTest(observed, len(before), float(np.mean(t_max >= observed)))

    def pretest(self) -> PreTest:
        """Wald test of all pre-treatment effects being zero, with their joint covariance.

        As R's `did`, cells that are NA or have no sampling variance are left out of the test.
        """
        se = self.cells["se"].to_numpy()
        pre = np.flatnonzero(~self._post() & self._valid() & (np.nan_to_num(se) > 0))
        if len(pre) == 0:
            raise ValueError("there are no pre-treatment periods to test")
        att = self.cells["att"].to_numpy()[pre]
        covariance = self._moments()[0][np.ix_(pre, pre)] / self.n
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
