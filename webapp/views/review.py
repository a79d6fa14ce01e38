"""Case review: claim a case, see the recommendation and its explanation, countersign it."""

from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, g, redirect, request, url_for
from werkzeug.wrappers import Response

from feedback.db import utcnow
from feedback.errors import FIELD_FAULTS, AlreadyDecided, ClaimedByOther, Conflict, NotFound, NotShown
from feedback.impact import assignment as arms
from feedback.models import DECISION_ACTIONS, Recommendation
from feedback.params import Choice, Id, Text, parse_params
from feedback.permissions import Action
from feedback.review import claims, decisions
from feedback.review import queries as review_queries
from webapp.auth import login_required
from webapp.extensions import db
from webapp.htmx import is_htmx, render_page_or_block
from webapp.views.queue import queue_filter

bp = Blueprint("review", __name__, url_prefix="/review")

ACTION_WORDS = {"accept": "Accepted", "override": "Overrode", "escalate": "Escalated"}
DECISION_FORM = (
    Choice("action", DECISION_ACTIONS, required=True),
    Text("final_action", 64),
    Text("reason_code", 64),
    Text("note", 2000),
    Text("shown", 512),  # the token issued when the case was shown
)


def filter_args() -> dict[str, Any]:
    """The queue filter to carry from case to case."""
    flt = queue_filter()
    return {k: v for k, v in (("model", flt.model_id), ("site", flt.site)) if v}


def _shown_mac(recommendation_id: int, stamp: int) -> str:
    """HMAC of (reviewer, case, claim) under the app's secret key."""
    secret = current_app.config["SECRET_KEY"]
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    message = f"countersign-shown:{g.user.id}:{recommendation_id}:{stamp}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def shown_token(rec: Recommendation) -> str:
    """The token a decision form carries: this case, shown to this reviewer under their current claim."""
    stamp = claims.claim_stamp(rec)
    return "" if stamp is None else f"{stamp}.{_shown_mac(rec.id, stamp)}"


def shown_claim(recommendation_id: int, token: str) -> int | None:
    """The claim stamp a decision form's token vouches for, or None if it was not issued for this case and reviewer."""
    stamp, _, mac = token.partition(".")
    if not stamp.isdigit() or len(stamp) > 20:
        return None
    return int(stamp) if hmac.compare_digest(mac, _shown_mac(recommendation_id, int(stamp))) else None


def render_panel(rec: Recommendation | None, status: int = 200, **extra: Any) -> tuple[str, int]:
    """The review page, or only its panel for htmx."""
    context = {
        "rec": rec,
        "now": utcnow(),
        "filter_args": filter_args(),
        "notice": None,
        "problem": None,
        "fields": {},
        "form": {},
        "holder": None,
        "claim_next": False,
        "claimable": False,
        "auto_claim": False,
        "undo": None,
        "undo_seconds": decisions.UNDO_SECONDS,
        "settle_ms": int(current_app.config["DECISION_SETTLE_MS"]),
        "shown": shown_token(rec) if rec is not None and rec.claimed_by_id == g.user.id else "",
    }
    context.update(extra)
    # A running experiment may hide the AI from this reviewer for this case.
    assignment = arms.assignment_for(db.session, rec, g.user.id) if rec is not None else None
    context["assignment"] = assignment
    context["ai_shown"] = rec is not None and arms.ai_shown_for(rec.model_version, assignment)
    return render_page_or_block("review/case.html", "review_panel", status=status, **context)


def opened_from_our_pages() -> bool:
    """Whether the browser says this page was opened from one of Countersign's own pages.

    Fetch Metadata: a link on another site (or an old browser that sends nothing) never
    claims a case by itself; the reviewer presses "Review this case" instead.
    """
    return request.headers.get("Sec-Fetch-Site") == "same-origin"


def holds_claim(rec: Recommendation, user_id: int) -> bool:
    """Whether this user holds a live claim on the open case."""
    live = rec.claim_expires_at is not None and rec.claim_expires_at > utcnow()
    return rec.status == "open" and rec.claimed_by_id == user_id and live


def as_seen(rec: Recommendation, *, auto_claim: bool = False) -> dict[str, Any]:
    """How this reviewer sees a case: to decide (their claim), held by someone else, or free to claim."""
    if rec.status != "open" or holds_claim(rec, g.user.id):
        return {}
    if rec.claimed_by_id is not None and rec.claim_expires_at is not None and rec.claim_expires_at > utcnow():
        return {"holder": claims.claimed_message(rec, g.user)}
    return {"claimable": True, "auto_claim": auto_claim}


@bp.get("/next")
@login_required(Action.REVIEW)
def next_case() -> tuple[str, int]:
    """A page that takes the next free case by POST (at once when opened from our own pages)."""
    return render_panel(None, claim_next=True, auto_claim=opened_from_our_pages())


@bp.post("/next")
@login_required(Action.REVIEW)
def claim_next() -> Response | tuple[str, int]:
    """Claim the most urgent free case and open it."""
    flt = queue_filter()
    rec = claims.claim_next(db.session, g.user, model_id=flt.model_id, site=flt.site)
    if not is_htmx():
        if rec is None:
            return render_panel(None)
        return redirect(url_for("review.case", recommendation_id=rec.id, **filter_args()))
    return _panel_at(rec)


def _panel_at(rec: Recommendation | None, **extra: Any) -> Response:
    """The panel for htmx, with the address bar moved to the case it shows."""
    body, status = render_panel(rec, **extra)
    response = Response(body, status, mimetype="text/html")
    response.headers["HX-Push-Url"] = (
        url_for("review.case", recommendation_id=rec.id, **filter_args())
        if rec
        else url_for("review.next_case", **filter_args())
    )
    return response


@bp.get("/<int:recommendation_id>")
@login_required(Action.REVIEW)
def case(recommendation_id: int) -> Response | tuple[str, int]:
    """Show a case; reading never claims it (the claim is a POST, sent at once from our own pages)."""
    queue_filter()  # a bad filter is refused, as on every review page
    rec = review_queries.case_detail(db.session, recommendation_id)
    if rec is None:
        abort(404)
    body, status = render_panel(rec, **as_seen(rec, auto_claim=opened_from_our_pages()))
    response = Response(body, status, mimetype="text/html")
    response.vary.add("Sec-Fetch-Site")
    return response


@bp.post("/<int:recommendation_id>")
@login_required(Action.REVIEW)
def claim(recommendation_id: int) -> Response | tuple[str, int]:
    """Claim the case and show it ready to countersign, or say who holds it or how it was decided."""
    queue_filter()  # a bad filter is refused before anything is claimed
    try:
        rec = claims.claim_case(db.session, g.user, recommendation_id=recommendation_id)
    except NotFound:
        abort(404)
    except (ClaimedByOther, AlreadyDecided) as exc:
        holder = exc.message if isinstance(exc, ClaimedByOther) else None
        return render_panel(review_queries.case_detail(db.session, recommendation_id), 409, holder=holder)
    if not is_htmx():
        return redirect(url_for("review.case", recommendation_id=rec.id, **filter_args()))
    return render_panel(rec)


NOT_SHOWN = "Your decision was not saved: it was not made on the case shown to you here. Here is the case as it is now."


@bp.post("/<int:recommendation_id>/decision")
@login_required(Action.REVIEW)
def decide(recommendation_id: int) -> Response | tuple[str, int]:
    """Record the decision, then swap in the next case with a confirmation that can undo it.

    The form must carry the token issued when this case was shown to this reviewer (the API's
    decision endpoint needs none): a decision never lands on a case other than the one on screen.
    """
    flt = queue_filter()  # a bad filter is refused before the decision is stored
    form = request.form
    # The next case is claimed in the decision's own transaction: one commit for both.
    nxt = decisions.NextCase(model_id=flt.model_id, site=flt.site)
    try:
        values = parse_params(form, DECISION_FORM)
        stamp = shown_claim(recommendation_id, values["shown"] or "")
        if stamp is None:
            raise NotShown("no token for this case")
        decision = decisions.record_decision(
            db.session,
            g.user,
            recommendation_id=recommendation_id,
            action=values["action"],
            final_action=values["final_action"],
            reason_code=values["reason_code"],
            note=values["note"] or "",
            shown_claim=stamp,
            then_claim=nxt,
        )
    except FIELD_FAULTS as exc:
        rec = review_queries.case_detail(db.session, recommendation_id)
        return render_panel(
            rec, exc.status, problem=exc.message, fields=exc.fields, form=form.to_dict(), open_panel=form.get("action")
        )
    except NotShown:
        rec = review_queries.case_detail(db.session, recommendation_id)
        if rec is None:
            abort(404)
        return render_panel(rec, 409, problem=NOT_SHOWN, **as_seen(rec))
    except NotFound:
        abort(404)
    except (AlreadyDecided, ClaimedByOther) as exc:
        rec = review_queries.case_detail(db.session, recommendation_id)
        return render_panel(rec, 409, problem=f"Your decision was not saved: {exc.message}.", lost_race=True)

    final = decision.final_action
    outcome = f" ({decision.recommendation.model.action_label(final)})" if final else ""
    notice = f"{ACTION_WORDS[decision.action]} case {decision.recommendation.external_id}{outcome}."
    if not is_htmx():
        target = (
            url_for("review.case", recommendation_id=nxt.case.id, **filter_args())
            if nxt.case
            else url_for("queue.index", **filter_args())
        )
        return redirect(target)
    left = decision.decided_at + timedelta(seconds=decisions.UNDO_SECONDS) - utcnow()
    undo = {
        "recommendation_id": recommendation_id,
        "external_id": decision.recommendation.external_id,
        "ms": max(int(left / timedelta(milliseconds=1)), 0),
    }
    return _panel_at(nxt.case, notice=notice, undo=undo)


@bp.post("/<int:recommendation_id>/undo")
@login_required(Action.REVIEW)
def undo(recommendation_id: int) -> Response | tuple[str, int]:
    """Take back one's last decision (for UNDO_SECONDS): the case comes back, claimed by this reviewer.

    The case shown meanwhile (`shown_case`, claimed for them after the decision) is given back.
    """
    showing = parse_params(request.form, (Id("shown_case"),))["shown_case"]
    try:
        rec = decisions.retract_decision(db.session, g.user, recommendation_id=recommendation_id)
    except NotFound:
        abort(404)
    except Conflict as exc:
        current = review_queries.case_detail(db.session, showing) if showing else None
        if current is None:
            current = review_queries.case_detail(db.session, recommendation_id)
        return render_panel(current, 409, problem=f"Nothing was undone: {exc.message}.", **as_seen(current))
    if showing and showing != recommendation_id:
        claims.release_claim(db.session, g.user, recommendation_id=showing)
        rec = review_queries.case_detail(db.session, recommendation_id) or rec
    notice = f"Undone: case {rec.external_id} is open again and yours to decide."
    if not is_htmx():
        return redirect(url_for("review.case", recommendation_id=rec.id, **filter_args()))
    return _panel_at(rec, notice=notice)


@bp.post("/<int:recommendation_id>/claim")
@login_required(Action.REVIEW)
def renew(recommendation_id: int) -> Response:
    """Keep the claim alive while the reviewer has the case open."""
    try:
        claims.claim_case(db.session, g.user, recommendation_id=recommendation_id)
    except (ClaimedByOther, AlreadyDecided):
        return Response(status=409)
    except NotFound:
        abort(404)
    return Response(status=204)


@bp.post("/<int:recommendation_id>/release")
@login_required(Action.REVIEW)
def release(recommendation_id: int) -> Response:
    """Give the case back and return to the queue."""
    queue_filter()
    claims.release_claim(db.session, g.user, recommendation_id=recommendation_id)
    return redirect(url_for("queue.index", **filter_args()))
