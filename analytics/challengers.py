"""Shadow challengers against the champion on the same cases: pure functions on count frames.

A challenger is another version of the same model that scored a case the champion scored, without
any reviewer seeing it. Everything here starts from a frame of counted cells, one row per
combination of these flags (the SQL in feedback/challengers/queries.py counts them):

- `n`: cases in the cell;
- `aided`: the reviewer saw the champion's recommendation (unaided decisions, from an A/B control
  arm or the shadow stage, are free of automation bias);
- `has_final`: the reviewer's decision has a final action (accepted or overridden; an escalation
  has none until it is resolved);
- `c_agree` / `k_agree`: the challenger's / champion's action equals that final action;
- `has_truth`: the case has a label outcome (its first one, as the override rollups use);
- `c_right` / `k_right`: the challenger's / champion's action equals that label.

Definitions (c = challenger, k = champion):

- agreement: share of decided cases (with a final action) where c's action is the final action;
- would-be override rate: among the decided cases where the reviewer saw the AI, the share where
  the final action differs from c's action: the override rate c would have had if reviewers had
  decided as they did (the product's override rate is an aided-only measure, so this one is too);
- accuracy: share of cases with a label outcome where c's action is the label.

Every rate has a 95% Wilson interval. The paired comparison with the champion is McNemar's test on
the discordant pairs: b cases where only the champion was right, c where only the challenger was.
With fewer than `EXACT_BELOW` discordant pairs the test is the exact binomial (b ~ Bin(b + c, 1/2),
two-sided); from there on the chi-square with continuity correction, (|b − c| − 1)² / (b + c) on
one degree of freedom, is accurate and is used. The same test is run on agreement with the
reviewer.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
from scipy import stats

from analytics.rates import wilson_interval

EXACT_BELOW = 25  # discordant pairs; below this McNemar's test is the exact binomial one
CELL_FLAGS = ("aided", "has_final", "c_agree", "k_agree", "has_truth", "c_right", "k_right")


@dataclass(frozen=True)
class McNemar:
    """McNemar's test of b against c discordant pairs: the statistic, its p-value and which form was used."""

    b: int
    c: int
    statistic: float | None
    p_value: float | None
    method: str


def mcnemar(b: int, c: int) -> McNemar:
    """McNemar's test: exact binomial when b + c < EXACT_BELOW, else chi-square with continuity correction.

    The exact form's statistic is min(b, c), as statsmodels reports it; no discordant pairs means
    there is nothing to test (p-value None).

    :param b: pairs where only the first (the champion) was right
    :param c: pairs where only the second (the challenger) was right
    """
    if b < 0 or c < 0:
        raise ValueError("discordant counts cannot be negative")
    total = b + c
    if total == 0:
        return McNemar(b, c, None, None, "no discordant pairs")
    if total < EXACT_BELOW:
        p_value = min(1.0, 2 * float(stats.binom.cdf(min(b, c), total, 0.5)))
        return McNemar(b, c, float(min(b, c)), p_value, "exact binomial")
    statistic = (abs(b - c) - 1) ** 2 / total
    return McNemar(b, c, float(statistic), float(stats.chi2.sf(statistic, 1)), "chi-square, continuity corrected")


def _rate(successes: int, n: int) -> tuple[float | None, float | None, float | None]:
    """successes / n with its Wilson 95% interval; all None when n is 0."""
    low, high = wilson_interval(successes, n)
    return (successes / n if n else None), low, high


def tally(cells: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Sum the cells into the counts each comparison needs, one row per group of `by`.

    :param cells: the counted cells (see the module docstring), plus the `by` columns
    :param by: grouping columns (for example ["version"] or ["version", "segment"])
    """
    missing = [c for c in ("n", *CELL_FLAGS, *by) if c not in cells.columns]
    if missing:
        raise ValueError(f"the frame lacks column(s) {', '.join(missing)}")
    f = cells.astype({flag: bool for flag in CELL_FLAGS})
    n = f["n"].astype("int64")
    decided = f["has_final"]
    aided = decided & f["aided"]
    truth = f["has_truth"]
    parts = pd.DataFrame(
        {
            "n": n,
            "decided": n * decided,
            "agree": n * (decided & f["c_agree"]),
            "champion_agree": n * (decided & f["k_agree"]),
            "agree_only_champion": n * (decided & f["k_agree"] & ~f["c_agree"]),
            "agree_only_challenger": n * (decided & f["c_agree"] & ~f["k_agree"]),
            "aided_decided": n * aided,
            "would_be_overrides": n * (aided & ~f["c_agree"]),
            "champion_overrides": n * (aided & ~f["k_agree"]),
            "with_outcome": n * truth,
            "right": n * (truth & f["c_right"]),
            "champion_right": n * (truth & f["k_right"]),
            "right_only_champion": n * (truth & f["k_right"] & ~f["c_right"]),
            "right_only_challenger": n * (truth & f["c_right"] & ~f["k_right"]),
        }
    )
    if not by:
        return parts.sum().to_frame().T.astype("int64")
    for column in by:
        parts[column] = f[column]
    return parts.groupby(by, sort=True, dropna=False).sum().reset_index()


def compare(cells: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per group: the challenger's agreement, would-be override rate and accuracy with Wilson intervals,
    the champion's on the same cases, and McNemar's test of the two (on accuracy and on agreement).

    :param cells: the counted cells (see the module docstring), plus the `by` columns
    :param by: grouping columns
    """
    counts = tally(cells, by)
    rows = []
    for row in counts.to_dict("records"):
        out = dict(row)
        for name, hits, total in (
            ("agreement", "agree", "decided"),
            ("champion_agreement", "champion_agree", "decided"),
            ("would_be_override_rate", "would_be_overrides", "aided_decided"),
            ("champion_override_rate", "champion_overrides", "aided_decided"),
            ("accuracy", "right", "with_outcome"),
            ("champion_accuracy", "champion_right", "with_outcome"),
        ):
            value, low, high = _rate(int(row[hits]), int(row[total]))
            out[name], out[f"{name}_ci_low"], out[f"{name}_ci_high"] = value, low, high
        test = mcnemar(int(row["right_only_champion"]), int(row["right_only_challenger"]))
        out["mcnemar_statistic"], out["mcnemar_p"], out["mcnemar_method"] = test.statistic, test.p_value, test.method
        agreement_test = mcnemar(int(row["agree_only_champion"]), int(row["agree_only_challenger"]))
        out["mcnemar_agreement_p"] = agreement_test.p_value
        out["mcnemar_agreement_method"] = agreement_test.method
        rows.append(out)
    columns = list(counts.columns) + [c for c in (rows[0] if rows else {}) if c not in counts.columns]
    return pd.DataFrame(rows, columns=columns)
