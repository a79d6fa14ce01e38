"""Where do people override a model version more than usual? Subgroup mining on aggregated counts.

Input is one row per *cell* (a combination of condition values) with counts, so the database
does the heavy grouping. Candidates are every value of one condition and every pair of values
of two conditions. Each is tested against the version's baseline override rate with a
one-sided binomial test; Benjamini-Hochberg keeps the false discovery rate at `alpha` (and, in
data with no pattern at all, the chance of reporting anything at `alpha`). Overlapping
findings are pruned so the simplest description that explains the excess wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd
from scipy import stats

from analytics.rates import wilson_interval

COUNTS = ("n", "overrides", "override_outcomes", "override_ai_wrong")


@dataclass(frozen=True)
class Pattern:
    """A subgroup that is overridden more than its version's baseline."""

    conditions: tuple[tuple[str, str], ...]  # (condition column, value), sorted
    n: int
    overrides: int
    rate: float
    rate_low: float
    rate_high: float
    baseline: float
    expected: float
    excess: float
    p_value: float
    q_value: float
    wrong_share: float  # share of its overrides where the outcome showed the AI was wrong (Laplace-smoothed)
    priority: float  # excess overrides weighted by how often the AI was really wrong there

    @property
    def key(self) -> str:
        """A stable identity: the same subgroup always has the same key."""
        return "&".join(f"{c}={v}" for c, v in self.conditions)

    @property
    def ratio(self) -> float:
        """How many times the baseline rate this pattern's rate is (infinite on a zero baseline)."""
        return self.rate / self.baseline if self.baseline else float("inf")


def _candidates(cells: pd.DataFrame, conditions: list[str], max_conditions: int) -> pd.DataFrame:
    """Counts for every value of one condition and every pair of values of two conditions."""
    frames = []
    for size in range(1, max_conditions + 1):
        for columns in combinations(conditions, size):
            present = cells.dropna(subset=list(columns))
            if present.empty:
                continue
            grouped = present.groupby(list(columns), observed=True)[list(COUNTS)].sum().reset_index()
            grouped["conditions"] = [
                tuple(sorted(zip(columns, (str(v) for v in values), strict=True)))
                for values in grouped[list(columns)].itertuples(index=False)
            ]
            frames.append(grouped[["conditions", *COUNTS]])
    if not frames:
        return pd.DataFrame(columns=["conditions", *COUNTS])
    return pd.concat(frames, ignore_index=True)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Adjusted p-values (q-values) controlling the false discovery rate."""
    m = len(p_values)
    if m == 0:
        return p_values
    order = np.argsort(p_values)
    ranked = p_values[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out


def mine(
    cells: pd.DataFrame,
    conditions: list[str],
    *,
    min_cases: int = 30,
    alpha: float = 0.05,
    max_conditions: int = 2,
    max_patterns: int = 50,
) -> list[Pattern]:
    """Credible over-override patterns, most excess overrides (weighted by AI errors) first.

    :param cells: one row per combination of condition values with counts `n` (accepted or
        overridden decisions), `overrides`, `override_outcomes` (overrides whose outcome is
        known) and `override_ai_wrong` (of those, the ones where the AI was wrong)
    :param conditions: the condition columns; missing values mean "not applicable"
    :param min_cases: smallest subgroup worth reporting
    :param alpha: false discovery rate
    """
    total_n, total_overrides = int(cells["n"].sum()), int(cells["overrides"].sum())
    if total_n == 0 or total_overrides == 0:
        return []
    baseline = total_overrides / total_n
    pool = _candidates(cells, conditions, max_conditions)
    pool = pool[(pool["n"] >= min_cases) & (pool["n"] < total_n)].reset_index(drop=True)
    if pool.empty:
        return []
    n, k = pool["n"].to_numpy(), pool["overrides"].to_numpy()
    # One-sided: P(X >= k) under the baseline rate. Every tested candidate enters the correction.
    p_values = stats.binom.sf(k - 1, n, baseline)
    q_values = benjamini_hochberg(p_values)
    pool = pool.assign(p_value=p_values, q_value=q_values, rate=k / n, excess=k - n * baseline)
    credible = pool[(pool["q_value"] <= alpha) & (pool["rate"] > baseline)]
    patterns = [_pattern(row, baseline) for row in credible.itertuples(index=False)]
    patterns.sort(key=lambda p: (-p.priority, len(p.conditions), p.key))
    return _simplest(patterns, cells, baseline, min_cases)[:max_patterns]


def _pattern(row: object, baseline: float) -> Pattern:
    n, k = int(row.n), int(row.overrides)  # type: ignore[attr-defined]
    low, high = wilson_interval(k, n)
    known, wrong = int(row.override_outcomes), int(row.override_ai_wrong)  # type: ignore[attr-defined]
    wrong_share = (wrong + 1) / (known + 2)
    excess = float(row.excess)  # type: ignore[attr-defined]
    return Pattern(
        conditions=row.conditions,  # type: ignore[attr-defined]
        n=n,
        overrides=k,
        rate=k / n,
        rate_low=float(low if low is not None else 0.0),
        rate_high=float(high if high is not None else 1.0),
        baseline=baseline,
        expected=n * baseline,
        excess=excess,
        p_value=float(row.p_value),  # type: ignore[attr-defined]
        q_value=float(row.q_value),  # type: ignore[attr-defined]
        wrong_share=wrong_share,
        priority=2 * excess * wrong_share,  # equals the excess when half the overrides were right
    )


def _members(cells: pd.DataFrame, conditions: tuple[tuple[str, str], ...]) -> np.ndarray:
    """Which cells belong to a pattern."""
    mask = np.ones(len(cells), dtype=bool)
    for column, value in conditions:
        mask &= (cells[column] == value).to_numpy()
    return mask


def _simplest(patterns: list[Pattern], cells: pd.DataFrame, baseline: float, min_cases: int) -> list[Pattern]:
    """Keep, in priority order, only patterns that add something to those already kept.

    - A refinement of a kept pattern (one more condition) stays only when its rate is credibly
      above that pattern's own rate (binomial p < 0.01).
    - Any other candidate stays only when its cases outside every kept pattern are still
      credibly over-overridden: "amount over 7k" is dropped when "claims over 10k" already
      explains its excess, however the two dimensions are named.
    - Finally a generalisation is dropped when a kept refinement accounts for at least 75% of
      its excess overrides.
    """
    n, k = cells["n"].to_numpy(), cells["overrides"].to_numpy()
    kept: list[Pattern] = []
    covered = np.zeros(len(cells), dtype=bool)
    for candidate in patterns:
        conditions = set(candidate.conditions)
        parents = [other for other in kept if set(other.conditions) < conditions]
        if parents:
            if any(stats.binom.sf(candidate.overrides - 1, candidate.n, p.rate) >= 0.01 for p in parents):
                continue
        else:
            outside = _members(cells, candidate.conditions) & ~covered
            n_out, k_out = int(n[outside].sum()), int(k[outside].sum())
            if n_out < min_cases or stats.binom.sf(k_out - 1, n_out, baseline) >= 0.01:
                continue
        kept.append(candidate)
        covered |= _members(cells, candidate.conditions)
    return [
        p for p in kept if not any(set(p.conditions) < set(o.conditions) and o.excess >= 0.75 * p.excess for o in kept)
    ]
