"""Staggered rollouts: Callaway & Sant'Anna (2021) group-time average treatment effects.

`att_gt` estimates them on a long panel (`panel.py` checks and reshapes it, `estimate.py` fits
each 2x2 comparison); `AttGt` holds the result and its aggregations (`results.py`); `twfe` is
the two-way fixed effects regression they are compared with.
"""

from analytics.staggered.estimate import att_gt, twfe
from analytics.staggered.results import CONTROLS, KINDS, METHODS, Aggregate, AttGt, Bootstrap, PreTest

__all__ = ["CONTROLS", "KINDS", "METHODS", "Aggregate", "AttGt", "Bootstrap", "PreTest", "att_gt", "twfe"]
