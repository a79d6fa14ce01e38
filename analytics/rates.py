"""Proportions with honest uncertainty."""

from __future__ import annotations

from statsmodels.stats.proportion import proportion_confint


def wilson_interval(successes: int, n: int, alpha: float = 0.05) -> tuple[float | None, float | None]:
    """Wilson score interval for successes / n; (None, None) when n is 0.

    :param successes: count of events
    :param n: count of trials
    :param alpha: 1 - confidence level
    """
    if n == 0:
        return None, None
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be between 0 and n ({successes} of {n})")
    low, high = proportion_confint(successes, n, alpha=alpha, method="wilson")
    return float(low), float(high)
