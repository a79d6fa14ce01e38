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
    """Group-time effects with their influence functions (n units × cells).

    A cell that could not be estimated (see `warnings`) has NaN effect and standard error and a
    zero influence function; every aggregation and test leaves it out, as R's `did` does with
    `na.rm = TRUE`.
    """

    cells: pd.DataFrame  # columns cohort, time, att, se
    influence: np.ndarray
    cohort_of_unit: np.ndarray
    warnings: list[str] = field(default_factory=list)  # what was dropped, recoded or left out, and why
    _cache: dict[str, Aggregate] = field(default_factory=dict)
    _codes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.cohort_of_unit)

    def _se(self, inf: np.ndarray) -> float:
        """Analytic standard error from a unit-level influence function."""
        return float(np.sqrt(inf @ inf / self.n) / np.sqrt(self.n))

    def _group_probabilities(self) -> dict[float, float]:
        """P(G = g) for each treated cohort."""
        cohorts, position = self._cohort_codes()
        counts = np.bincount(position, minlength=len(cohorts)) / self.n
        shares = dict(zip(cohorts.tolist(), counts.tolist(), strict=True))
        return {float(g): shares[float(g)] for g in self.cells["cohort"].unique()}

    def _cohort_codes(self) -> tuple[np.ndarray, np.ndarray]:
        """The distinct cohorts and each unit's position among them (computed once, by hashing)."""
        if "codes" not in self._codes:
            cohorts = np.sort(pd.unique(self.cohort_of_unit)).astype(float)
            self._codes["codes"] = cohorts, np.searchsorted(cohorts, self.cohort_of_unit)
        return self._codes["codes"]

    def _weight_influence(self, groups: np.ndarray, weights: np.ndarray, att: np.ndarray) -> np.ndarray:
        """Influence of estimating the cohort-share weights, applied to `att` (did's wif @ att), per unit.

        With T = Σ weights and wa = Σ weights·att, did's two terms reduce to
        (Σ_{k in G_i} att_k - #{k in G_i}·wa/T) / T: one lookup by each unit's cohort.
        """
        total = weights.sum()
        weighted_att = weights @ att
        cohorts, position = self._cohort_codes()
        per_cohort = np.zeros(len(cohorts))
        at = np.searchsorted(cohorts, groups.astype(float))
        np.add.at(per_cohort, at, att - weighted_att / total)
        return (per_cohort / total)[position]

    def _rows(self, which: np.ndarray, coefficients: np.ndarray) -> np.ndarray:
        """Σ coefficient × influence function of the cells `which`, per unit."""
        rows = self.influence.T  # cells × units, each cell contiguous
        out = np.zeros(self.n)
        for j, c in zip(which.tolist(), coefficients.tolist(), strict=True):
            out += c * rows[j]
        return out

    def _weighted(self, which: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
        """Weighted average of cells (weights estimated as group shares) and its influence function."""
        att = self.cells["att"].to_numpy()[which]
        share = weights / weights.sum()
        inf = self._rows(which, share)
        groups = self.cells["cohort"].to_numpy()[which]
        return float(share @ att), inf + self._weight_influence(groups, weights, att)

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
        return np.isfinite(self.cells["att"].to_numpy())

    def _post(self) -> np.ndarray:
        """Cells at or after their cohort's first treated period."""
        return (self.cells["time"] >= self.cells["cohort"]).to_numpy()

    def _pg(self) -> np.ndarray:
        """Each cell's cohort share."""
        probabilities = self._group_probabilities()
        return np.array([probabilities[float(g)] for g in self.cells["cohort"]])

    def _simple(self) -> Aggregate:
        """Post-treatment cells weighted by cohort size."""
        which = np.flatnonzero(self._post() & self._valid())
        att, inf = self._weighted(which, self._pg()[which])
        return Aggregate("simple", pd.DataFrame(columns=["key", "att", "se"]), att, self._se(inf))

    def _group(self) -> Aggregate:
        """Average post-treatment effect per cohort, then cohorts weighted by size."""
        post = self._post() & self._valid()
        cohort_of_cell = self.cells["cohort"].to_numpy()
        cohorts = sorted(set(cohort_of_cell[post].tolist()))  # cohorts with an estimated post-treatment effect
        atts, infs = [], []
        for g in cohorts:
            which = np.flatnonzero(post & (cohort_of_cell == g))
            atts.append(float(self.cells["att"].to_numpy()[which].mean()))
            infs.append(self._rows(which, np.full(len(which), 1 / len(which))))
        att_g, inf_g = np.array(atts), np.column_stack(infs)
        probabilities = self._group_probabilities()
        weights = np.array([probabilities[float(g)] for g in cohorts])
        inf = inf_g @ (weights / weights.sum()) + self._weight_influence(np.array(cohorts), weights, att_g)
        table = pd.DataFrame({"key": cohorts, "att": att_g, "se": [self._se(inf_g[:, i]) for i in range(len(cohorts))]})
        return Aggregate("group", table, float(att_g @ weights / weights.sum()), self._se(inf))

    def _dynamic(self) -> Aggregate:
        """By event time e = time - cohort (cohorts weighted by size); overall: mean over e >= 0."""
        valid = self._valid()
        event = (self.cells["time"] - self.cells["cohort"]).to_numpy()
        pg = self._pg()
        rows, infs = [], []
        for e in sorted(set(event[valid].tolist())):
            which = np.flatnonzero((event == e) & valid)
            att, inf = self._weighted(which, pg[which])
            rows.append((e, att, self._se(inf)))
            infs.append(inf)
        table = pd.DataFrame(rows, columns=["key", "att", "se"])
        after = (table["key"] >= 0).to_numpy()
        by_event = np.column_stack(infs)
        inf = by_event[:, after].mean(axis=1)
        return Aggregate("dynamic", table, float(table.loc[after, "att"].mean()), self._se(inf), by_event)

    def _calendar(self) -> Aggregate:
        """By period among cohorts already treated (weighted by size); overall: mean over periods."""
        post = self._post() & self._valid()
        pg = self._pg()
        times = self.cells["time"].to_numpy()
        rows, infs = [], []
        for t in sorted(set(times[post].tolist())):
            which = np.flatnonzero(post & (times == t))
            att, inf = self._weighted(which, pg[which])
            rows.append((t, att, self._se(inf)))
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
        """Wald test of all pre-treatment effects being zero, with their joint covariance.

        As R's `did`, cells that are NA or have no sampling variance are left out of the test.
        """
        se = self.cells["se"].to_numpy()
        pre = np.flatnonzero(~self._post() & self._valid() & (np.nan_to_num(se) > 0))
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


def _numbers(df: pd.DataFrame, column: str) -> np.ndarray:
    """A column as finite floats (no copy when it already is), or a ValueError naming it."""
    try:
        values = df[column].to_numpy(dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{column} must be numbers with no gaps") from None
    if not np.isfinite(values).all():
        raise ValueError(f"{column} must be numbers with no gaps")
    return values


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
    values = {c: _numbers(df, c) for c in columns}
    layout = _sorted_layout(units, times)
    if layout is not None:
        width = layout
        periods = times[:width].copy()

        def grid(column: np.ndarray) -> np.ndarray:
            return column.reshape(-1, width)

    else:
        unit_codes, _ = pd.factorize(units)
        time_codes, periods = pd.factorize(times, sort=True)
        periods = np.asarray(periods, dtype=float)
        n_units, n_periods = unit_codes.max() + 1, len(periods)
        cells = np.bincount(unit_codes * n_periods + time_codes, minlength=n_units * n_periods)
        if (cells > 1).any():
            raise ValueError("each unit may appear once per period")
        if (cells == 0).any():
            raise ValueError("the panel must be balanced: every unit observed in every period")

        def grid(column: np.ndarray) -> np.ndarray:
            out = np.empty((n_units, n_periods))
            out[unit_codes, time_codes] = column
            return out

    cohort_grid = grid(cohort_values)
    if (cohort_grid != cohort_grid[:, :1]).any():
        raise ValueError(f"{cohort} must not change within a unit")
    cohorts = cohort_grid[:, 0].copy()
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


def _label(value: float) -> str:
    """A period or cohort as written by the analyst (2005, not 2005.0)."""
    return str(int(value)) if float(value).is_integer() else str(value)


def _design(periods: np.ndarray, cohorts: np.ndarray, control: str) -> _Design:
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
        names = ", ".join(_label(g) for g in np.unique(groups[late]))
        notes.append(
            f"{int(late.sum())} unit(s) go live after the last period ({_label(periods[-1])}; cohort {names}): "
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
                f"({_label(latest)}): there is no comparison (never-treated units are needed)"
            )
        dropped = ", ".join(_label(t) for t in periods[~keep])
        if control == "never":
            groups[groups == latest] = 0
            notes.append(
                f"no unit is never treated: the last cohort ({_label(latest)}) is used as never treated, and "
                f"periods {dropped} (from its go-live on) are dropped because nothing is left to compare with"
            )
        else:
            compared_only = latest
            notes.append(
                f"no unit is never treated: the last cohort ({_label(latest)}) serves only as the comparison and "
                f"gets no effect of its own, and periods {dropped} (from its go-live on) are dropped because "
                "nothing is left to compare with"
            )
        periods = periods[keep]
    first = (groups > 0) & (groups <= periods[0])
    kept_units = None
    if first.any():
        names = ", ".join(_label(g) for g in np.unique(groups[first]))
        notes.append(
            f"{int(first.sum())} unit(s) treated from the first period on (cohort {names}) are dropped: "
            "they have no period before treatment to compare"
        )
        kept_units = np.flatnonzero(~first)
        groups = groups[kept_units]
    estimated = sorted(float(g) for g in np.unique(groups) if g > 0 and g != compared_only)
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
    design = _design(shaped.periods, shaped.cohorts, control)
    keep_periods = np.flatnonzero(np.isin(shaped.periods, design.periods))

    # Units ordered by cohort, so that every cohort, and so every comparison group, is a run of
    # contiguous units: cells then read and write slices instead of masks over every unit.
    codes = np.searchsorted(np.unique(design.groups), design.groups)
    order = np.argsort(codes, kind="stable")
    units = order if design.kept_units is None else design.kept_units[order]
    groups = design.groups[order]
    values, counts = np.unique(groups, return_counts=True)
    starts = np.concatenate([[0], np.cumsum(counts)])
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
            att, note = estimator.cell(g, comparison, k, base, column)
            if note:
                notes.append(f"cohort {_label(g)}, period {_label(t)}: {note}; its effect is left out (NA)")
            se = float(np.sqrt(column @ column / n) / np.sqrt(n)) if np.isfinite(att) else np.nan
            rows.append((g, float(t), att, se))
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

    def cell(self, g: float, comparison: list[float], t: int, base: int, column: np.ndarray) -> tuple[float, str]:
        """ATT(g, t) against `comparison` with base period `base`; its influence function into `column`.

        Returns the estimate (NaN when it cannot be made) and, then, why.
        """
        n_treated = self.sizes[g]
        n_comparison = sum(self.sizes[c] for c in comparison)
        if n_comparison == 0:
            return np.nan, "no comparison units"
        if self.k == 0:
            return self._no_covariates(g, comparison, t, base, column, n_treated, n_comparison)
        key = (g, tuple(comparison), -1 if self.fixed else base)
        if key not in self.fits:
            self.fits[key] = _Fit(self._take(self.design[base], [g, *comparison]), int(n_treated), self.method)
        fit = self.fits[key]
        if fit.problem:
            return np.nan, fit.problem
        change = self._take(self.outcome[t], [g, *comparison]) - self._take(self.outcome[base], [g, *comparison])
        att, psi = fit.estimate(change)
        if not np.isfinite(att):
            return np.nan, "every comparison unit is trimmed (propensity at least 0.995)"
        psi *= self.n / len(change)
        offset = 0
        for c in [g, *comparison]:
            part = self.span[c]
            size = part.stop - part.start
            column[part] = psi[offset : offset + size]
            offset += size
        return att, ""

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
    ) -> tuple[float, str]:
        """The difference in mean changes, written slice by slice without masks over every unit.

        Its influence function is n/n1 (dy - mean1) on treated units and -n/n0 (dy - mean0) on
        comparison units. DR and IPW still follow R's overlap rule with the constant propensity
        n1 / (n1 + n0).
        """
        share = n_treated / (n_treated + n_comparison)
        if self.method != "reg" and share >= OVERLAP_LIMIT:
            return np.nan, f"overlap condition violated (propensity {share:.4f} reaches {OVERLAP_LIMIT})"
        if self.method != "reg" and share >= TRIM_LEVEL:
            return np.nan, "every comparison unit is trimmed (propensity at least 0.995)"
        mean1 = (self.totals[g][t] - self.totals[g][base]) / n_treated
        mean0 = sum(self.totals[c][t] - self.totals[c][base] for c in comparison) / n_comparison
        parts = [(g, mean1, self.n / n_treated)] + [(c, mean0, -self.n / n_comparison) for c in comparison]
        for c, mean, scale in parts:
            part = column[self.span[c]]
            np.subtract(self.outcome[t, self.span[c]], self.outcome[base, self.span[c]], out=part)
            part -= mean
            part *= scale
        return float(mean1 - mean0), ""


class _Fit:
    """The nuisance fits of one 2x2 sample (treated units first): propensity score and comparison regression.

    The estimators follow DRDID's panel estimators (Sant'Anna & Zhao 2020) term by term; their
    influence functions are assembled from matrix-vector products, never from units × covariates
    matrices per cell.
    """

    def __init__(self, x: np.ndarray, n_treated: int, method: str) -> None:
        """Fit what `method` needs on the design `x` (units × (1 + covariates))."""
        self.x, self.n1, self.method = x, n_treated, method
        m = len(x)
        self.d = np.zeros(m)
        self.d[:n_treated] = 1.0
        self.problem = ""
        if method != "ipw":  # the comparison regression
            x0 = x[n_treated:]
            gram = x0.T @ x0
            if np.linalg.cond(gram, 1) * np.finfo(float).eps >= 1:
                self.problem = "the comparison units' covariates are collinear"
                return
            self.gram_inv = np.linalg.inv(gram)  # (Σ comparison x x')^-1
        if method == "reg":
            return
        ps, hessian_inv, problem = _logit(self.d, x)
        if problem:
            self.problem = problem
            return
        self.ps, self.hessian_inv = ps, hessian_inv
        trimmed = ps[n_treated:] >= TRIM_LEVEL
        self.w_cont = np.zeros(m)  # DRDID's trimmed comparison weights p/(1-p)
        self.w_cont[n_treated:] = np.where(trimmed, 0.0, ps[n_treated:] / (1 - ps[n_treated:]))
        self.trimmed = int(trimmed.sum())

    def estimate(self, dy: np.ndarray) -> tuple[float, np.ndarray]:
        """ATT and its influence function (per unit of the sample) for the outcome changes `dy`."""
        x, d, n1, m = self.x, self.d, self.n1, len(self.x)
        mean_treat = n1 / m
        if self.method == "ipw":
            fitted = np.zeros(m)
            residual = dy
        else:
            beta = self.gram_inv @ (x[n1:].T @ dy[n1:])
            fitted = x @ beta
            residual = dy - fitted
        # The comparison regression's linear representation applied to v: (1-d)(dy - fitted) x'(X'X/m)^-1 v.
        ols = np.zeros(m)
        if self.method != "ipw":
            ols[n1:] = residual[n1:]
        if self.method == "reg":
            eta_treat = dy[:n1].mean()
            eta_cont = fitted[:n1].mean()
            m1 = x[:n1].sum(axis=0) / m
            inf = np.zeros(m)
            inf[:n1] = dy[:n1] - eta_treat - (fitted[:n1] - eta_cont)
            inf -= ols * (x @ (self.gram_inv @ m1)) * m
            return float(eta_treat - eta_cont), inf / mean_treat
        w = self.w_cont
        mean_cont = w.sum() / m
        if mean_cont == 0:
            return np.nan, dy
        eta_treat = residual[:n1].mean()
        eta_cont = (w @ residual) / (m * mean_cont)
        inf_treat = np.zeros(m)
        inf_treat[:n1] = residual[:n1] - eta_treat
        weighted = w * (residual - eta_cont)
        m2 = x.T @ weighted / m  # how the estimate moves with the propensity model
        inf_cont = weighted + (d - self.ps) * (x @ (self.hessian_inv @ m2)) * m
        inf = inf_treat / mean_treat - inf_cont / mean_cont
        if self.method == "dr":
            m1 = x[:n1].sum(axis=0) / m
            m3 = x.T @ w / m
            inf -= ols * (x @ (self.gram_inv @ (m1 / mean_treat - m3 / mean_cont))) * m
        return float(eta_treat - eta_cont), inf


def _logit(d: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, str]:
    """Propensity score by logistic regression (Newton steps) and its inverse information (Σ p(1-p) x x')^-1.

    Returns a problem instead when R's `did` would not estimate the cell: a fitted propensity
    reaching 0.999 (no overlap), or a fit that separates or does not converge.
    """
    beta = np.zeros(x.shape[1])
    converged = False
    for _ in range(50):
        p = special.expit(x @ beta)
        try:
            step = np.linalg.solve(((p * (1 - p))[:, None] * x).T @ x, x.T @ (d - p))
        except np.linalg.LinAlgError:
            break
        beta += step
        if not np.isfinite(beta).all():
            break
        if np.max(np.abs(step)) < 1e-10 * (1 + np.max(np.abs(beta))):
            converged = True
            break
    p = special.expit(x @ beta)
    if p.max() >= OVERLAP_LIMIT:
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
