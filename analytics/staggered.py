"""Staggered rollouts: Callaway & Sant'Anna (2021) group-time average treatment effects.

Pure functions on a balanced panel DataFrame (one row per unit and period): never-treated or
not-yet-treated comparison units, a varying base period, the doubly robust, outcome-regression
and inverse-probability-weighting estimators of each 2x2 comparison (Sant'Anna & Zhao 2020, as
DRDID: covariates from each comparison's base period, comparison units with a propensity of
0.995 or more trimmed), analytic influence-function standard errors, the simple / group /
dynamic / calendar aggregations (with the influence function of the estimated group weights),
and the pre-trend Wald test.

Edge cases follow R's `did` 2.5, each reported in the result's `warnings`: a cohort going live
after the last period is never treated; units treated from the first period are dropped;
without never-treated units the last cohort becomes the comparison and the periods from its
go-live on are dropped; a DR or IPW cell whose fitted propensity reaches 0.999 is NA and left
out of every aggregate. The numbers reproduce R's published values on mpdta
(tests/unit/analytics/test_staggered.py) and csdid, live, on random panels
(tests/unit/analytics/test_staggered_csdid.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import special, stats

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


def _numbers(df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as integers or finite floats (no copy when it already is one), or a ValueError naming it."""
    values = df[column].to_numpy()
    if values.dtype.kind in "iu":  # no gaps possible
        return np.asarray(values)
    try:
        values = values.astype(float, copy=False)
    except (TypeError, ValueError):
        raise ValueError(f"{column} must be numbers with no gaps") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{column} must be numbers with no gaps")
    return np.asarray(values)


def _sorted_layout(units: np.ndarray, times: np.ndarray) -> int | None:
    """The number of periods when rows are already unit by unit, each unit's periods in one increasing order."""
    n_rows = len(times)
    head = units[: min(n_rows, 100_000)]
    changes = np.flatnonzero(head[1:] != head[:-1])
    n_periods = int(changes[0]) + 1 if len(changes) else len(head)
    if n_periods < 2 or n_rows % n_periods or n_periods == n_rows:
        return None
    by_unit = units.reshape(-1, n_periods)
    grid = times.reshape(-1, n_periods)
    first = grid[0]
    if not (np.all(first[1:] > first[:-1]) and (grid == first).all() and (by_unit == by_unit[:, :1]).all()):
        return None
    heads = by_unit[:, 0]
    distinct = np.all(heads[1:] > heads[:-1]) if heads.dtype.kind in "iuf" else pd.Index(heads).is_unique
    return n_periods if distinct else None


def _reshape(df: pd.DataFrame, unit: str, time: str, cohort: str, columns: list[str]) -> _Panel:
    """Check the panel is balanced with a fixed cohort per unit, and lay it out as unit × period arrays.

    Rows already ordered unit by unit (each with the same increasing periods) are reshaped without
    copying; any other order is placed through factorised unit and period codes.
    """
    times = _numbers(df, time)
    units = df[unit].to_numpy()
    cohort_values = _numbers(df, cohort)
    values = {c: _numbers(df, c).astype(float, copy=False) for c in columns}
    layout = _sorted_layout(units, times)
    if layout is not None:
        width = layout
        periods = times[:width].astype(float)

        def grid(column: np.ndarray) -> np.ndarray:
            """The column as units × periods, a view."""
            return column.reshape(-1, width)

    else:
        unit_codes, _ = pd.factorize(units)
        if (unit_codes < 0).any():
            raise ValueError(f"{unit} must have no gaps")
        time_codes, periods = pd.factorize(times, sort=True)
        periods = np.asarray(periods, dtype=float)
        n_units, n_periods = unit_codes.max() + 1, len(periods)
        cells = np.bincount(unit_codes * n_periods + time_codes, minlength=n_units * n_periods)
        if (cells > 1).any():
            raise ValueError("each unit may appear once per period")
        if (cells == 0).any():
            raise ValueError("the panel must be balanced: every unit observed in every period")

        def grid(column: np.ndarray) -> np.ndarray:
            """The column placed as units × periods."""
            out = np.empty((n_units, n_periods))
            out[unit_codes, time_codes] = column
            return out

    cohort_grid = grid(cohort_values)
    if (cohort_grid != cohort_grid[:, :1]).any():
        raise ValueError(f"{cohort} must not change within a unit")
    cohorts = cohort_grid[:, 0].astype(float)
    if (cohorts < 0).any():
        raise ValueError(f"{cohort} must be 0 (never treated) or the first treated period")
    return _Panel(periods, cohorts, {c: grid(v) for c, v in values.items()})


@dataclass(frozen=True)
class _Design:
    """The panel after R's handling of edge cohorts: which periods and units enter, and in which cohorts."""

    periods: np.ndarray  # kept periods, increasing
    groups: np.ndarray  # cohort of each kept unit (0: never treated or compared only)
    kept_units: np.ndarray | None  # positions of kept units, None when all are kept
    cohorts: list[float]  # cohorts whose effects are estimated
    warnings: list[str]


def _label(value: float, names: Mapping[float, str] | None = None) -> str:
    """A period or cohort as the analyst writes it: its name if given, else 2005 (not 2005.0)."""
    if names is not None and value in names:
        return str(names[value])
    return str(int(value)) if float(value).is_integer() else str(value)


def _design(
    periods: np.ndarray, cohorts: np.ndarray, control: str, names: Mapping[float, str] | None = None
) -> _Design:
    """Recode, drop and restrict cohorts as R's `did` (2.5.1) does, each step with a warning.

    A cohort going live after the last period is never treated within the panel. Without
    never-treated units, periods from the last cohort's go-live on have no comparison: they
    are dropped, and the last cohort becomes the comparison (recoded as never treated with
    control="never", compared only with control="not_yet"). Units treated from the first
    period on have no pre-treatment period and are dropped.
    """
    notes: list[str] = []
    groups = cohorts.copy()
    late = groups > periods[-1]
    if late.any():
        listed = ", ".join(_label(g, names) for g in np.unique(groups[late]))
        notes.append(
            f"{int(late.sum())} unit(s) go live after the last period ({_label(periods[-1], names)}; cohort {listed}): "
            "they are treated as never treated"
        )
        groups[late] = 0
    compared_only: float | None = None
    if not (groups == 0).any():
        latest = float(groups.max())
        keep = periods < latest
        if keep.sum() < 2:
            raise ValueError(
                "no unit is never treated, and fewer than two periods come before the last cohort goes live "
                f"({_label(latest, names)}): there is no comparison (never-treated units are needed)"
            )
        dropped = ", ".join(_label(t, names) for t in periods[~keep])
        if control == "never":
            groups[groups == latest] = 0
            notes.append(
                f"no unit is never treated: the last cohort ({_label(latest, names)}) is used as never treated, and "
                f"periods {dropped} (from its go-live on) are dropped because nothing is left to compare with"
            )
        else:
            compared_only = latest
            notes.append(
                f"no unit is never treated: the last cohort ({_label(latest, names)}) serves only as the comparison "
                f"and gets no effect of its own, and periods {dropped} (from its go-live on) are dropped because "
                "nothing is left to compare with"
            )
        periods = periods[keep]
    first = (groups > 0) & (groups <= periods[0])
    kept_units = None
    if first.any():
        listed = ", ".join(_label(g, names) for g in np.unique(groups[first]))
        notes.append(
            f"{int(first.sum())} unit(s) treated from the first period on (cohort {listed}) are dropped: "
            "they have no period before treatment to compare"
        )
        kept_units = np.flatnonzero(~first)
        groups = groups[kept_units]
    estimated = sorted(float(g) for g in pd.unique(groups) if g > 0 and g != compared_only)
    if not estimated:
        raise ValueError("no cohort is treated after the first period with a comparison to estimate its effect")
    if control == "never" and not (groups == 0).any():
        raise ValueError("there are no never-treated units; use control='not_yet'")
    return _Design(periods, groups, kept_units, estimated, notes)


OVERLAP_LIMIT = 0.999  # R's did: a cell whose fitted propensity reaches this is NA
TRIM_LEVEL = 0.995  # DRDID: comparison units with a propensity at or above this are trimmed


def att_gt(
    df: pd.DataFrame,
    y: str,
    unit: str,
    time: str,
    cohort: str,
    control: str = "never",
    covariates: list[str] | None = None,
    method: str = "dr",
    labels: Mapping[float, str] | None = None,
) -> AttGt:
    """Callaway & Sant'Anna group-time effects ATT(g, t) with a varying base period, as R's `did` 2.5.

    Edge cohorts, cells without overlap and trimmed units are handled as R does; each is
    reported in the result's `warnings`, and a cell that cannot be estimated is NA (NaN).

    :param df: balanced panel, one row per unit and period
    :param y: outcome column
    :param unit: unit id column
    :param time: period column (numbers)
    :param cohort: first treated period of the unit, 0 for never treated
    :param control: "never" (never-treated units) or "not_yet" (also units not yet treated by then)
    :param covariates: conditioning covariates, taken from each comparison's base period (None: none)
    :param method: "dr", "reg" or "ipw" (identical without covariates, but for the overlap rule)
    :param labels: how the warnings write periods and cohorts (e.g. dates), by period number
    """
    if control not in CONTROLS:
        raise ValueError(f"control must be one of {', '.join(CONTROLS)}")
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}")
    covariates = list(covariates or [])
    missing = [c for c in (y, unit, time, cohort, *covariates) if c not in df.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")
    shaped = _reshape(df, unit, time, cohort, [y, *covariates])
    design = _design(shaped.periods, shaped.cohorts, control, labels)
    keep_periods = np.flatnonzero(np.isin(shaped.periods, design.periods))

    # Units ordered by cohort, so that every cohort, and so every comparison group, is a run of
    # contiguous units: cells then read and write slices instead of masks over every unit.
    values = np.sort(pd.unique(design.groups))  # hashing: few cohorts among many units
    codes = np.searchsorted(values, design.groups).astype(np.int16)  # small ints sort by radix
    order = np.argsort(codes, kind="stable")
    units = order if design.kept_units is None else design.kept_units[order]
    groups = design.groups[order]
    starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(values)))])
    span = {float(g): slice(int(starts[i]), int(starts[i + 1])) for i, g in enumerate(values)}

    def by_period(column: str) -> np.ndarray:
        """Periods × units, each period's values contiguous in cohort order (one gather, no copies between)."""
        source = shaped.values[column]
        out = np.empty((len(keep_periods), len(units)))
        for i, p in enumerate(keep_periods):
            np.take(source[:, p], units, out=out[i])
        return out

    outcome = by_period(y)
    estimator = _Cells(groups, span, outcome, [by_period(c) for c in covariates], method, len(covariates))
    periods = design.periods
    notes = list(design.warnings)
    rows: list[tuple[float, float, float, float]] = []
    n = len(groups)
    # Cells × units, so each cell's influence function is one contiguous row; transposed at the end.
    influence = np.zeros((len(design.cohorts) * (len(periods) - 1), n))
    for g in design.cohorts:
        before = int(np.searchsorted(periods, g)) - 1  # last period before go-live
        for k in range(1, len(periods)):
            t = periods[k]
            base = before if t >= g else k - 1
            if control == "not_yet":  # first treated after both the period and its base period
                threshold = max(t, periods[base])
                comparison = [c for c in span if c == 0 or (c > threshold and c != g)]
            else:
                comparison = [0.0]
            column = influence[len(rows)]
            att, squares, note = estimator.cell(g, comparison, k, base, column)
            if note:
                notes.append(
                    f"cohort {_label(g, labels)}, period {_label(t, labels)}: {note}; its effect is left out (NA)"
                )
            se = float(np.sqrt(squares) / n) if np.isfinite(att) else np.nan
            rows.append((g, float(t), att, se))
    if estimator.trimmed:
        cohorts = ", ".join(_label(g, labels) for g in sorted({g for g, _ in estimator.trimmed}))
        notes.append(
            f"comparison units with a propensity score of {TRIM_LEVEL} or more were left out (trimmed, as DRDID "
            f"does) in {len(estimator.trimmed)} cell(s) of cohort(s) {cohorts}, "
            f"{max(count for _, count in estimator.trimmed)} unit(s) at most"
        )
    cells = pd.DataFrame(rows, columns=["cohort", "time", "att", "se"])
    if cells["cohort"].map(float.is_integer).all() and cells["time"].map(float.is_integer).all():
        cells = cells.astype({"cohort": int, "time": int})
    return AttGt(cells=cells, influence=influence[: len(rows)].T, cohort_of_unit=groups, warnings=notes)


class _Cells:
    """The 2x2 comparisons behind each ATT(g, t), with the fits they share computed once.

    Within a cohort many cells compare the same units on the same covariates (all post-treatment
    cells against never-treated units, for instance), so the propensity model and the
    comparison units' design matrix are fitted once per distinct sample, not once per cell.
    """

    def __init__(
        self,
        groups: np.ndarray,
        span: dict[float, slice],
        outcome: np.ndarray,
        covariates: list[np.ndarray],
        method: str,
        k: int,
    ) -> None:
        """Hold the periods × units outcome and covariates, in cohort order."""
        self.n = len(groups)
        self.span = span
        self.outcome = outcome
        self.method = method
        self.k = k
        if covariates:
            # Time-invariant covariates (the usual case) give one design for every base period.
            self.fixed = all((c == c[:1]).all() for c in covariates)
            self.design = np.stack([np.ones_like(covariates[0]), *covariates], axis=2)  # periods × units × (1+k)
        # Per period, each cohort's outcome total: the difference in means without covariates.
        sizes = np.array([s.stop - s.start for s in span.values()], dtype=float)
        starts = np.array([s.start for s in span.values()])
        self.sizes = dict(zip(span, sizes, strict=True))
        totals = np.add.reduceat(outcome, starts, axis=1)  # periods × cohorts
        self.totals = {g: totals[:, i] for i, g in enumerate(span)}
        self.fits: dict[tuple[float, tuple[float, ...], int], _Fit] = {}
        self.trimmed: list[tuple[float, int]] = []  # (cohort, comparison units trimmed) per cell

    def cell(
        self, g: float, comparison: list[float], t: int, base: int, column: np.ndarray
    ) -> tuple[float, float, str]:
        """ATT(g, t) against `comparison` with base period `base`; its influence function into `column`.

        Returns the estimate (NaN when it cannot be made), the sum of squares of its influence
        function (for the standard error, without reading the units outside the comparison) and
        why the estimate could not be made.
        """
        n_treated = self.sizes[g]
        n_comparison = sum(self.sizes[c] for c in comparison)
        if n_comparison == 0:
            return np.nan, np.nan, "no comparison units"
        if self.k == 0:
            return self._no_covariates(g, comparison, t, base, column, n_treated, n_comparison)
        key = (g, tuple(comparison), -1 if self.fixed else base)
        if key not in self.fits:
            self.fits[key] = _Fit(self._take(self.design[base], [g, *comparison]), int(n_treated), self.method)
        fit = self.fits[key]
        if fit.problem:
            return np.nan, np.nan, fit.problem
        parts = [self.span[c] for c in [g, *comparison]]
        offsets = np.cumsum([0] + [p.stop - p.start for p in parts])
        change = fit.change  # reused across the cells sharing this fit: no fresh memory per cell
        for part, start, stop in zip(parts, offsets[:-1], offsets[1:], strict=True):
            np.subtract(self.outcome[t, part], self.outcome[base, part], out=change[start:stop])
        att, psi = fit.estimate(change)
        if fit.trimmed:
            self.trimmed.append((g, fit.trimmed))
        for part, start, stop in zip(parts, offsets[:-1], offsets[1:], strict=True):
            np.multiply(psi[start:stop], self.n / len(change), out=column[part])
        return att, _dot(psi, psi) * (self.n / len(change)) ** 2, ""

    def _take(self, values: np.ndarray, cohorts: list[float]) -> np.ndarray:
        """The rows of `values` (by unit) for these cohorts, treated cohort first."""
        return np.concatenate([values[self.span[c]] for c in cohorts])

    def _no_covariates(
        self,
        g: float,
        comparison: list[float],
        t: int,
        base: int,
        column: np.ndarray,
        n_treated: float,
        n_comparison: float,
    ) -> tuple[float, float, str]:
        """The difference in mean changes, written slice by slice without masks over every unit.

        Its influence function is n/n1 (dy - mean1) on treated units and -n/n0 (dy - mean0) on
        comparison units. DR and IPW still follow R's overlap rule with the constant propensity
        n1 / (n1 + n0).
        """
        share = n_treated / (n_treated + n_comparison)
        if self.method != "reg" and share >= OVERLAP_LIMIT:
            return np.nan, np.nan, f"overlap condition violated (propensity {share:.4f} reaches {OVERLAP_LIMIT})"
        if self.method != "reg" and share >= TRIM_LEVEL:
            return np.nan, np.nan, "every comparison unit is trimmed (propensity at least 0.995)"
        mean1 = (self.totals[g][t] - self.totals[g][base]) / n_treated
        mean0 = sum(self.totals[c][t] - self.totals[c][base] for c in comparison) / n_comparison
        parts = [(g, mean1, self.n / n_treated)] + [(c, mean0, -self.n / n_comparison) for c in comparison]
        squares = 0.0
        for c, mean, scale in parts:
            part = column[self.span[c]]
            np.subtract(self.outcome[t, self.span[c]], self.outcome[base, self.span[c]], out=part)
            part -= mean
            part *= scale
            squares += _dot(part, part)
        return float(mean1 - mean0), squares, ""


class _Fit:
    """The nuisance fits of one 2x2 sample (treated units first): propensity score and comparison regression.

    The estimators follow DRDID's panel estimators (Sant'Anna & Zhao 2020) term by term, with
    unit weights 1. Their influence functions are assembled from matrix-vector products into
    buffers kept with the fit, never from units × covariates matrices per cell.
    """

    def __init__(self, x: np.ndarray, n_treated: int, method: str) -> None:
        """Fit what `method` needs on the design `x` (units × (1 + covariates), treated units first)."""
        self.x, self.n1, self.method = x, n_treated, method
        m = self.m = len(x)
        # Buffers reused by every cell sharing this fit, so cells allocate no fresh memory.
        self.change, self.out, self.residual, self.extra, self.propensity = (np.empty(m) for _ in range(5))
        self.problem = ""
        self.trimmed = 0
        self.m1 = x[:n_treated].sum(axis=0) / m  # mean of d·x
        if method != "ipw":  # the comparison regression
            x0 = x[n_treated:]
            gram = x0.T @ x0
            if np.linalg.cond(gram, 1) * np.finfo(float).eps >= 1:
                self.problem = "the comparison units' covariates are collinear"
                return
            self.gram_inv = np.linalg.inv(gram)  # (Σ comparison x x')^-1
        if method == "reg":
            # The comparison regression's linear representation (1-d)·r·x'(X'X/m)^-1 v, for the fixed v
            # of this estimator: a constant factor per comparison unit.
            self.regression = (x[n_treated:] @ (self.gram_inv @ self.m1)) * (-m)
            return
        d = np.zeros(m)
        d[:n_treated] = 1.0
        ps, hessian_inv, problem = _logit(d, x)
        if problem:
            self.problem = problem
            return
        comparison_ps = ps[n_treated:]
        trimmed = comparison_ps >= TRIM_LEVEL
        self.w = np.where(trimmed, 0.0, comparison_ps / (1 - comparison_ps))  # DRDID's comparison weights
        self.trimmed = int(trimmed.sum())
        self.mean_cont = self.w.sum() / m
        if self.mean_cont == 0:
            self.problem = "every comparison unit is trimmed (propensity at least 0.995)"
            return
        # The logit's linear representation score·x'H^-1, applied later to each cell's m2.
        self.score_x = ((d - ps)[:, None] * x) @ hessian_inv * (m / self.mean_cont)
        m3 = x[n_treated:].T @ self.w / m  # mean of w·x
        if method == "dr":
            regression = self.gram_inv @ (self.m1 / (n_treated / m) - m3 / self.mean_cont)
            self.regression = (x[n_treated:] @ regression) * (-m)

    def estimate(self, dy: np.ndarray) -> tuple[float, np.ndarray]:
        """ATT and its influence function (per unit of the sample) for the outcome changes `dy`.

        The returned array is a buffer of the fit, overwritten by the next call.
        """
        x, n1, m, out = self.x, self.n1, self.m, self.out
        mean_treat = n1 / m
        residual = dy
        if self.method != "ipw":
            beta = self.gram_inv @ np.einsum("ij,i->j", x[n1:], dy[n1:])
            residual = np.einsum("ij,j->i", x, beta, out=self.residual)
            np.subtract(dy, residual, out=residual)
        treated, compared = residual[:n1], residual[n1:]
        if self.method == "reg":
            # eta_treat - eta_cont is the treated units' mean residual.
            att = float(treated.mean())
            np.subtract(treated, att, out=out[:n1])
            np.multiply(compared, self.regression, out=out[n1:])
            out /= mean_treat
            return att, out
        eta_treat = float(treated.mean())
        eta_cont = _dot(self.w, compared) / (m * self.mean_cont)
        weighted = np.subtract(compared, eta_cont, out=self.extra[n1:])
        weighted *= self.w
        # How the estimate moves with the propensity model (DRDID's asy_lin_rep_ps @ M2).
        m2 = np.einsum("ij,i->j", x[n1:], weighted) / m
        propensity = np.einsum("ij,j->i", self.score_x, m2, out=self.propensity)
        np.subtract(treated, eta_treat, out=out[:n1])
        out[:n1] /= mean_treat
        out[:n1] -= propensity[:n1]
        np.divide(weighted, -self.mean_cont, out=out[n1:])
        out[n1:] -= propensity[n1:]
        if self.method == "dr":
            weighted = np.multiply(compared, self.regression, out=weighted)
            out[n1:] += weighted
        return eta_treat - eta_cont, out


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    """a · b without BLAS: the per-cell products are too thin for BLAS threads, which only add contention."""
    return float(np.einsum("i,i->", a, b))


def _logit(d: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Propensity score by logistic regression (Newton steps) and its inverse information (Σ p(1-p) x x')^-1.

    Returns a problem instead when R's `did` would not estimate the cell: a fitted propensity
    reaching 0.999 (no overlap), or a fit that separates or does not converge.
    """
    beta = np.zeros(x.shape[1])
    converged = False
    for _ in range(50):
        p = special.expit(np.einsum("ij,j->i", x, beta))
        try:
            step = np.linalg.solve(((p * (1 - p))[:, None] * x).T @ x, np.einsum("ij,i->j", x, d - p))
        except np.linalg.LinAlgError:
            break
        beta += step
        if not np.isfinite(beta).all():
            break
        if np.max(np.abs(step)) < 1e-10 * (1 + np.max(np.abs(beta))):
            converged = True
            break
    p = special.expit(np.einsum("ij,j->i", x, beta))
    # Diverging coefficients mean separation: fitted propensities of 1, the starkest lack of overlap.
    if not np.isfinite(beta).all() or np.nanmax(p) >= OVERLAP_LIMIT:
        return p, np.empty(0), f"overlap condition violated (a propensity reaches {OVERLAP_LIMIT})"
    if not converged:
        return p, np.empty(0), "the propensity model did not converge"
    return p, np.linalg.inv(((p * (1 - p))[:, None] * x).T @ x), ""


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
        return np.asarray(
            (
                frame["v"]
                - frame.groupby("u")["v"].transform("mean")
                - frame.groupby("t")["v"].transform("mean")
                + frame["v"].mean()
            ).to_numpy()
        )

    x, yy = demean(treated), demean(data[y])
    beta = float(x @ yy / (x @ x))
    residual = yy - beta * x
    scores = pd.Series(x * residual).groupby(data[unit].to_numpy()).sum().to_numpy()
    units, periods = data[unit].nunique(), data[time].nunique()
    if len(yy) - 1 - (units + periods - 1) <= 0:
        raise ValueError("too few units and periods for the two-way fixed-effects comparison")
    dof = units / (units - 1) * (len(yy) - 1) / (len(yy) - 1 - (units + periods - 1))
    return beta, float(np.sqrt(dof * (scores @ scores)) / (x @ x))
