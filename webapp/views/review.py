"""Case review: claim a case, see the recommendation and its explanation, countersign it."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, g, redirect, request, url_for
from werkzeug.wrappers import Response

from feedback import experiments, queries, services
from feedback.db import utcnow
from feedback.errors import FIELD_FAULTS, AlreadyDecided, ClaimedByOther, NotFound
from feedback.models import DECISION_ACTIONS, Recommendation
from feedback.params import Choice, Text, parse_params
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
)


def filter_args() -> dict[str, Any]:
    """The queue filter to carry from case to case."""
    flt = queue_filter()
    return {k: v for k, v in (("model", flt.model_id), ("site", flt.site)) if v}


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
    }
    context.update(extra)
    # A running experiment may hide the AI from this reviewer for this case.
    assignment = experiments.assignment_for(db.session, rec, g.user.id) if rec is not None else None
    context["assignment"] = assignment
    context["ai_shown"] = rec is not None and rec.model_version.ai_visible and not (assignment and assignment.hides_ai)
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


@bp.get("/next")
@login_required(services.DECIDING_ROLES)
def next_case() -> tuple[str, int]:
    """A page that takes the next free case by POST (at once when opened from our own pages)."""
    return render_panel(None, claim_next=True, auto_claim=opened_from_our_pages())


@bp.post("/next")
@login_required(services.DECIDING_ROLES)
def claim_next() -> Response | tuple[str, int]:
    """Claim the most urgent free case and open it."""
    flt = queue_filter()
    rec = services.claim_next(db.session, reviewer=g.user, model_id=flt.model_id, site=flt.site)
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
@login_required(services.DECIDING_ROLES)
def case(recommendation_id: int) -> Response | tuple[str, int]:
    """Show a case; reading never claims it (the claim is a POST, sent at once from our own pages)."""
    queue_filter()  # a bad filter is refused, as on every review page
    rec = queries.case_detail(db.session, recommendation_id)
    if rec is None:
        abort(404)
    if rec.status != "open" or holds_claim(rec, g.user.id):
        body, status = render_panel(rec)
    elif rec.claimed_by_id is not None and rec.claim_expires_at is not None and rec.claim_expires_at > utcnow():
        body, status = render_panel(rec, holder=services.claimed_message(rec, g.user))
    else:
        body, status = render_panel(rec, claimable=True, auto_claim=opened_from_our_pages())
    response = Response(body, status, mimetype="text/html")
    response.vary.add("Sec-Fetch-Site")
    return response


@bp.post("/<int:recommendation_id>")
@login_required(services.DECIDING_ROLES)
def claim(recommendation_id: int) -> Response | tuple[str, int]:
    """Claim the case and show it ready to countersign, or say who holds it or how it was decided."""
    queue_filter()  # a bad filter is refused before anything is claimed
    try:
        rec = services.claim_case(db.session, recommendation_id=recommendation_id, reviewer=g.user)
    except NotFound:
        abort(404)
    except (ClaimedByOther, AlreadyDecided) as exc:
        holder = exc.message if isinstance(exc, ClaimedByOther) else None
        return render_panel(queries.case_detail(db.session, recommendation_id), 409, holder=holder)
    if not is_htmx():
        return redirect(url_for("review.case", recommendation_id=rec.id, **filter_args()))
    return render_panel(rec)


@bp.post("/<int:recommendation_id>/decision")
@login_required(services.DECIDING_ROLES)
def decide(recommendation_id: int) -> Response | tuple[str, int]:
    """Record the decision, then swap in the next case with a confirmation."""
    queue_filter()  # a bad filter is refused before the decision is stored
    form = request.form
    try:
        values = parse_params(form, DECISION_FORM)
        decision = services.record_decision(
            db.session,
            recommendation_id=recommendation_id,
            reviewer=g.user,
            action=values["action"],
            final_action=values["final_action"],
            reason_code=values["reason_code"],
            note=values["note"] or "",
        )
    except FIELD_FAULTS as exc:
        rec = queries.case_detail(db.session, recommendation_id)
        return render_panel(
            rec, exc.status, problem=exc.message, fields=exc.fields, form=form.to_dict(), open_panel=form.get("action")
        )
    except NotFound:
        abort(404)
    except (AlreadyDecided, ClaimedByOther) as exc:
        rec = queries.case_detail(db.session, recommendation_id)
        return render_panel(rec, 409, problem=f"Your decision was not saved: {exc.message}.", lost_race=True)

    outcome = f" ({decision.final_action})" if decision.final_action else ""
    notice = f"{ACTION_WORDS[decision.action]} case {decision.recommendation.external_id}{outcome}."
    flt = queue_filter()
    nxt = services.claim_next(
        db.session, reviewer=g.user, model_id=flt.model_id, site=flt.site, after_id=recommendation_id
    )
    if not is_htmx():
        target = (
            url_for("review.case", recommendation_id=nxt.id, **filter_args())
            if nxt
            else url_for("queue.index", **filter_args())
        )
        return redirect(target)
    return _panel_at(nxt, notice=notice)


@bp.post("/<int:recommendation_id>/claim")
@login_required(services.DECIDING_ROLES)
def renew(recommendation_id: int) -> Response:
    """Keep the claim alive while the reviewer has the case open."""
    try:
        services.claim_case(db.session, recommendation_id=recommendation_id, reviewer=g.user)
    except (ClaimedByOther, AlreadyDecided):
        return Response(status=409)
    except NotFound:
        abort(404)
    return Response(status=204)


@bp.post("/<int:recommendation_id>/release")
@login_required(services.DECIDING_ROLES)
def release(recommendation_id: int) -> Response:
    """Give the case back and return to the queue."""
    queue_filter()
    services.release_claim(db.session, recommendation_id=recommendation_id, reviewer=g.user)
    return redirect(url_for("queue.index", **filter_args()))
