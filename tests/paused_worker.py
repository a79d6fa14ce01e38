"""`countersign worker` with analyses that stop after their first progress report, for the SIGKILL test.

Run as a script (never imported by tests): the worker is the real command; only reading the panel
is made to wait, so the test can kill the process while a job is certainly under way.
"""

import time

from feedback.impact import runs as impact_runs
from webapp.main import main


def _never_returns(*_args: object, **_kwargs: object) -> None:
    while True:
        time.sleep(60)


impact_runs.panel_frame = _never_returns  # type: ignore[assignment]
main()
