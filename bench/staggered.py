"""Time att_gt plus all four aggregations on a large synthetic staggered rollout.

100,000 units × 10 periods (1,000,000 rows), three cohorts plus never-treated; median of
repeated runs, without and with a covariate, and the peak memory of one run.

    .venv/bin/python -m bench.staggered [--units 100000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
import tracemalloc

import numpy as np
import pandas as pd

from analytics.staggered import att_gt


def panel(units: int, periods: int = 10, seed: int = 0) -> pd.DataFrame:
    """A balanced panel with a true effect of -1.0 from each unit's go-live on."""
    rng = np.random.default_rng(seed)
    cohort = rng.choice([0, 4, 6, 8], size=units)
    size = rng.normal(0, 1, units)
    unit = np.repeat(np.arange(units), periods)
    period = np.tile(np.arange(1, periods + 1), units)
    g = np.repeat(cohort, periods)
    y = np.repeat(size, periods) + 0.1 * period + rng.normal(0, 1, units * periods) - 1.0 * ((g > 0) & (period >= g))
    return pd.DataFrame({"unit": unit, "period": period, "cohort": g, "y": y, "size": np.repeat(size, periods)})


def run(df: pd.DataFrame, covariates: list[str] | None) -> float:
    """Seconds for att_gt and the four aggregations."""
    started = time.perf_counter()
    result = att_gt(df, "y", "unit", "period", "cohort", control="never", covariates=covariates)
    for kind in ("simple", "group", "dynamic", "calendar"):
        result.aggregate(kind)
    return time.perf_counter() - started


def main() -> None:
    """Print medians and peak memory."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    df = panel(args.units)
    for covariates in (None, ["size"]):
        times = [run(df, covariates) for _ in range(args.repeat)]
        tracemalloc.start()
        run(df, covariates)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        label = "no covariates" if covariates is None else "one covariate (dr)"
        median = statistics.median(times)
        print(f"{len(df):,} rows, {label:<20} median {median:.3f} s, peak {peak:.0f} MB (Python allocations)")
    check = att_gt(df, "y", "unit", "period", "cohort").aggregate("simple")
    print(f"simple ATT {check.overall_att:.4f} (true -1.0), se {check.overall_se:.4f}")
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"whole process peak RSS {peak_rss:.0f} MB (Python, numpy, pandas and the 1M-row panel itself)")


if __name__ == "__main__":
    main()
