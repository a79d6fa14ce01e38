"""Time att_gt plus all four aggregations against csdid, side by side, and a 10M-row run.

1. 100,000 units × 10 periods (1,000,000 rows), three cohorts plus never-treated: Countersign
   and csdid (the Python port of R's `did`, `faster_mode=True`, analytic standard errors) run
   in turns on the same panel, without covariates and with one covariate (doubly robust).
   Medians of wall-clock and CPU time, and their ratios; on a shared machine the CPU-time
   ratio is the steadier one.
2. 1,000,000 units × 10 periods (10,000,000 rows) without covariates, in a fresh process: time
   and peak memory (the process's peak RSS, the panel itself included, and the estimator's own
   peak allocations by tracemalloc).

    .venv/bin/python -m bench.staggered [--units 100000] [--repeat 3] [--big-units 1000000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import statistics
import subprocess
import sys
import time
import tracemalloc
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from analytics.staggered import KINDS, att_gt


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


def ours(df: pd.DataFrame, covariates: list[str] | None) -> float:
    """att_gt and the four aggregations; returns the simple ATT."""
    result = att_gt(df, "y", "unit", "period", "cohort", control="never", covariates=covariates, method="dr")
    return [result.aggregate(kind) for kind in KINDS][0].overall_att


def csdid(df: pd.DataFrame, covariates: list[str] | None) -> float:
    """csdid's att_gt (fast mode, analytic SEs) and the four aggregations; returns the simple ATT."""
    from csdid.att_gt import ATTgt

    formula = f"y ~ {' + '.join(covariates)}" if covariates else None
    # csdid prints every aggregation's table; its warnings are not under test here.
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        fit = ATTgt("y", "period", "unit", "cohort", df, control_group="nevertreated", xformla=formula)
        fit.fit(est_method="dr", bstrap=False)
        simple = None
        for kind in KINDS:
            fit.aggte(typec=kind)
            simple = simple if simple is not None else fit.atte["overall_att"]
    return float(simple)


def timed(function: Callable[..., float], *args: object) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and the result of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function(*args)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def side_by_side(units: int, repeat: int) -> None:
    """Both estimators in turns on the same panel, with and without a covariate."""
    df = panel(units)
    print(f"{len(df):,} rows ({units:,} units × 10 periods), dr, never-treated comparison, {repeat} turns each")
    for covariates in (None, ["size"]):
        label = "no covariates" if covariates is None else "one covariate"
        runs: dict[str, list[tuple[float, float, float]]] = {"countersign": [], "csdid": []}
        for _ in range(repeat):
            runs["countersign"].append(timed(ours, df, covariates))
            runs["csdid"].append(timed(csdid, df, covariates))
        wall = {name: statistics.median(r[0] for r in rs) for name, rs in runs.items()}
        cpu = {name: statistics.median(r[1] for r in rs) for name, rs in runs.items()}
        gap = abs(runs["countersign"][0][2] - runs["csdid"][0][2])
        print(
            f"  {label:<14} countersign {wall['countersign']:.3f} s wall / {cpu['countersign']:.3f} s CPU; "
            f"csdid {wall['csdid']:.3f} s / {cpu['csdid']:.3f} s; "
            f"ratio {wall['csdid'] / wall['countersign']:.1f}x wall, {cpu['csdid'] / cpu['countersign']:.1f}x CPU "
            f"(simple ATT agrees to {gap:.1e})"
        )


def rss_now() -> float:
    """The process's resident memory now, in MB (Linux)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * resource.getpagesize() / 2**20


def big(units: int, repeat: int) -> dict[str, float]:
    """The no-covariate run on a large panel: median times, peak RSS and the estimator's peak allocations."""
    df = panel(units)
    rss_panel = rss_now()
    times = [timed(ours, df, None) for _ in range(repeat)]
    tracemalloc.start()
    ours(df, None)
    estimator_peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return {
        "rows": len(df),
        "wall": statistics.median(t[0] for t in times),
        "cpu": statistics.median(t[1] for t in times),
        "att": times[0][2],
        "rss_panel_mb": rss_panel,
        "rss_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "estimator_peak_mb": estimator_peak,
    }


def main() -> None:
    """Print the side-by-side ratios, then the large run from a fresh process."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--units", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--big-units", type=int, default=1_000_000)
    parser.add_argument("--big-only", action="store_true", help=argparse.SUPPRESS)  # the fresh process
    args = parser.parse_args()
    if args.big_only:
        print(json.dumps(big(args.big_units, args.repeat)))
        return
    side_by_side(args.units, args.repeat)
    command = [sys.executable, "-m", "bench.staggered", "--big-only", "--big-units", str(args.big_units)]
    out = json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)
    print(
        f"{out['rows']:,} rows without covariates: median {out['wall']:.3f} s wall / {out['cpu']:.3f} s CPU; "
        f"simple ATT {out['att']:.4f} (true -1.0)\n"
        f"  peak RSS {out['rss_peak_mb']:.0f} MB for the whole process, building the panel included (the panel "
        f"alone holds {out['rss_panel_mb']:.0f} MB); the estimator's own peak allocations "
        f"{out['estimator_peak_mb']:.0f} MB (tracemalloc)"
    )


if __name__ == "__main__":
    main()
