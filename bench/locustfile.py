"""Locust users for `python -m bench.load`: reviewers working the queue in the UI, and model services.

A signed-in reviewer opens the queue, claims the next case and then decides
case after case the way the htmx review screen does: each decision's answer carries the next
claimed case. Every tenth decision the reviewer looks at the queue again. A model service
posts batches of recommendations to the JSON API.

Settings come from the environment (bench.load sets them): BENCH_COOKIES, BENCH_SERVICE_TOKEN,
BENCH_BATCH, BENCH_SERVICES (how many of the users are model services; the rest review),
BENCH_THINK and BENCH_MODEL (the model whose queue reviewers work: the demo's claims, where the
AI is shown at every site). `Bare` users ask `GET /healthz`, the peer the others are read against.
"""

from __future__ import annotations

import itertools
import os
import re
import uuid
from datetime import UTC, datetime, timedelta
from http.cookiejar import Cookie
from urllib.parse import urlsplit

from locust import FastHttpUser, between, constant, task

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
CASE_ID = re.compile(r'id="review-panel"[^>]*data-case-id="(\d+)"')
# The token a decision form carries: it names the case shown, to this reviewer, under this claim.
SHOWN = re.compile(r'name="shown" value="([^"]+)"')
_reviewer_numbers = itertools.count()


def make_cookie(name: str, value: str, host: str) -> Cookie:
    """A plain host cookie for the cookie jar."""
    domain = urlsplit(host).hostname or "127.0.0.1"
    return Cookie(0, name, value, None, False, domain, False, False, "/", True, False, None, False, None, None, {})


THINK = float(os.environ.get("BENCH_THINK", "0"))
QUEUE = f"?model={os.environ['BENCH_MODEL']}" if os.environ.get("BENCH_MODEL", "0") != "0" else ""


class Bare(FastHttpUser):
    """The bare request: what one request costs the server with no work behind it."""

    wait_time = constant(0)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="healthz")


class Reviewer(FastHttpUser):
    """A frontline reviewer; BENCH_THINK is the mean seconds spent reading a case (0: none, saturating)."""

    wait_time = between(THINK / 2, THINK * 1.5) if THINK else constant(0)
    weight = 1

    def on_start(self) -> None:
        # Reviewers arrive signed in (a session cookie made by bench.load): signing in is once a
        # shift, and 50 simultaneous argon2 checks would only measure the password hash.
        cookie = os.environ["BENCH_COOKIES"].split(",")[next(_reviewer_numbers)]
        self.client.client.cookiejar.set_cookie(make_cookie("session", cookie, self.host))
        self.open_queue()
        self.case_id = self.claim_next()
        self.decided = 0

    def open_queue(self) -> None:
        page = self.client.get(f"/queue{QUEUE}", name="open queue")
        self.csrf = CSRF_INPUT.search(page.text).group(1)

    def claim_next(self) -> str | None:
        page = self.client.post(
            f"/review/next{QUEUE}",
            data={"csrf_token": self.csrf},
            headers={"HX-Request": "true", "X-CSRFToken": self.csrf},
            name="claim next case",
        )
        return self.shown(page.text)

    def shown(self, html: str) -> str | None:
        """The case a panel shows (remembering its token), or None."""
        found, token = CASE_ID.search(html), SHOWN.search(html)
        self.token = token.group(1) if token else ""
        return found.group(1) if found else None

    @task
    def decide(self) -> None:
        if self.case_id is None:
            self.case_id = self.claim_next()
            if self.case_id is None:
                return
        with self.client.post(
            f"/review/{self.case_id}/decision{QUEUE}",
            data={"action": "accept", "csrf_token": self.csrf, "shown": self.token},
            headers={"HX-Request": "true", "X-CSRFToken": self.csrf},
            name="decide",
            catch_response=True,
        ) as response:
            if response.status_code == 200:
                self.case_id = self.shown(response.text)
                response.success()
            else:
                response.failure(f"{response.status_code}")
                self.case_id = None
        self.decided += 1
        if self.decided % 10 == 0:
            self.open_queue()


class ModelService(FastHttpUser):
    """A model service sending batches of recommendations as fast as they are accepted."""

    wait_time = constant(0)
    fixed_count = int(os.environ.get("BENCH_SERVICES", "1"))

    @task
    def ingest(self) -> None:
        batch = int(os.environ.get("BENCH_BATCH", "1000"))
        prefix = uuid.uuid4().hex[:12]
        due = (datetime.now(UTC) + timedelta(hours=4)).isoformat()
        items = [
            {
                "model": "claims_triage",
                "model_version": "v2",
                "external_id": f"L-{prefix}-{i}",
                "subject": f"Claim {prefix}-{i}",
                "site": ("Leeds", "Manchester", "Bristol")[i % 3],
                "segment": {"claim_band": "over_10k" if i % 4 == 0 else "1k_10k", "channel": "web"},
                "recommended_action": "pay",
                "confidence": 0.8,
                "explanation": {"summary": "Routine claim", "factors": [{"name": "amount", "contribution": -0.3}]},
                "features": {"amount": 1000 + i, "policy_age_months": 12},
                "due_at": due,
            }
            for i in range(batch)
        ]
        self.client.post(
            "/api/v1/recommendations",
            json=items,
            headers={"Authorization": f"Bearer {os.environ['BENCH_SERVICE_TOKEN']}"},
            name=f"ingest {batch}",
        )
