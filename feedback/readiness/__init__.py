"""Readiness plans: go/kill criteria fixed before a pilot, evaluated on anytime-valid intervals.

services: register and change plans (each change a new plan version, audited with its reason);
queries: the plans and the measurements; reports: the scorecard (each criterion and the plan
read go, kill or keep collecting, with value, interval, n and threshold); drift: the one hook
to the drift reports.
"""
