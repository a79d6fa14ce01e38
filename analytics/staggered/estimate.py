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

import numpy as np
import pandas as pd
from scipy import special

from analytics.staggered.panel import comparison_design, label_of, reshape, validate_panel
from analytics.staggered.results import CONTROLS, METHODS, AttGt

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
    shaped = reshape(df, unit, time, cohort, [y, *covariates])
    design = comparison_design(shaped.periods, shaped.cohorts, control, labels)
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
                    f"cohort {label_of(g, labels)}, period {label_of(t, labels)}: {note}; its effect is left out (NA)"
                )
            se = float(np.sqrt(squares) / n) if np.isfinite(att) else np.nan
            rows.append((g, float(t), att, se))
    if estimator.trimmed:
        cohorts = ", ".join(label_of(g, labels) for g in sorted({g for g, _ in estimator.trimmed}))
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
    data = validate_panel(df, y, unit, time, cohort)
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
