"""Say it in people's words: labels for codes, articles, and one plain sentence per headline statistic.

Pure functions. Each sentence is built from the same numbers the page shows and from the same
test the page reports, so the words cannot disagree with the figures.
"""

from __future__ import annotations

import math
import re
from typing import Any

from feedback import formatting as fmt

ALPHA = 0.05

EXCEPTION_KIND_LABELS = {
    "reviewer_escalation": "Reviewer escalation",
    "low_confidence": "Low confidence",
    "policy": "Policy rule",
    "missing_data": "Missing data",
    "model_error": "Model error",
    "audit_sample": "Audit sample",
}
CONTROL_LABELS = {"not_yet": "not-yet-treated and never-treated units", "never": "never-treated units"}
ESTIMATOR_LABELS = {"dr": "doubly robust", "reg": "outcome regression", "ipw": "inverse probability weighting"}
ARM_LABELS = {"ai_shown": "AI shown", "control": "AI hidden (control)"}
BREAKDOWN_LABELS = {
    "model_version": "Model version",
    "site": "Site",
    "reason_code": "Reason",
    "reviewer": "Reviewer",
    "confidence_decile": "Confidence decile",
}

# Each metric's unit and which way is good (+1 higher, -1 lower, 0 neither), for verdicts and units.
METRICS: dict[str, tuple[str, int]] = {
    "handling_seconds": (fmt.SECONDS, -1),
    "median_handling_seconds": (fmt.SECONDS, -1),
    "override": (fmt.PROPORTION, -1),
    "override_rate": (fmt.PROPORTION, -1),
    "correct": (fmt.PROPORTION, 1),
    "accuracy": (fmt.PROPORTION, 1),
    "decisions": (fmt.COUNT, 1),
    "throughput": (fmt.COUNT, 1),
}
METRIC_NAMES = {
    "handling_seconds": "handling time",
    "median_handling_seconds": "median handling time",
    "override": "the override rate",
    "override_rate": "the override rate",
    "correct": "accuracy",
    "accuracy": "accuracy against outcomes",
    "decisions": "the number of decisions",
    "throughput": "decisions per active reviewer",
    "value": "the outcome",
}


def metric_unit(metric: str | None) -> str:
    """The unit of a metric (plain for an uploaded panel's value)."""
    return METRICS.get(metric or "", (fmt.PLAIN, 0))[0]


def metric_direction(metric: str | None) -> int:
    """+1 when higher is better, -1 when lower is, 0 when the metric has no good direction."""
    return METRICS.get(metric or "", (fmt.PLAIN, 0))[1]


def humanise(code: str | None) -> str:
    """A code in words when nobody gave a label: raise_alert reads "Raise alert"."""
    if not code:
        return ""
    words = re.sub(r"[_\s]+", " ", str(code)).strip()
    return words[:1].upper() + words[1:]


def humanise_value(value: Any) -> str:
    """A segment value in words: underscores as spaces, case kept (over_10k reads "over 10k")."""
    if value is None:
        return fmt.DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return re.sub(r"_+", " ", str(value)).strip() or str(value)


def upper_first(text: str) -> str:
    """The sentence with its first letter in capitals (and the rest untouched, unlike Jinja's capitalize)."""
    return text[:1].upper() + text[1:]


def kind_label(kind: str | None) -> str:
    """An exception kind in words."""
    return EXCEPTION_KIND_LABELS.get(kind or "", humanise(kind))


# Words spelt with a vowel that sound like a consonant, and the reverse; letters whose names start
# with a vowel sound (for initialisms such as "an SMS", "an FBI").
_CONSONANT_SOUND = re.compile(r"^(uni|use|usu|ura|uro|uk|eu|ewe|one\b|once|ubi|uti)", re.I)
_VOWEL_SOUND = re.compile(r"^(hour|honest|honou?r|heir)", re.I)
_VOWEL_LETTERS = set("AEFHILMNORSX")


def article(phrase: str) -> str:
    """ "a" or "an" for the phrase that follows it, by how it sounds: an electronics, a user, an hour, an 8."""
    word = phrase.strip()
    if not word:
        return "a"
    first = re.split(r"[\s\-/]", word, maxsplit=1)[0]
    if first[:1].isdigit():
        digits = re.match(r"\d[\d,]*", first)
        spoken = (digits.group(0) if digits else first).replace(",", "")
        # 8, 11, 18, 80, 800, 11k: "an"; 1, 100: "a". Numbers are read in groups of three.
        group = spoken[: len(spoken) % 3 or 3]
        return "an" if group.startswith("8") or group in ("11", "18") else "a"
    if len(first) > 1 and first.isupper() and first.isalpha():
        return "an" if first[0] in _VOWEL_LETTERS else "a"
    if _VOWEL_SOUND.match(first):
        return "an"
    if _CONSONANT_SOUND.match(first):
        return "a"
    return "an" if first[:1].lower() in "aeiou" else "a"


def with_article(phrase: str) -> str:
    """The phrase after its article: "an electronics", "a grocery"."""
    return f"{article(phrase)} {phrase}"


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def chance_clause(p: Any, alpha: float = ALPHA, what: str = "a difference") -> str:
    """What the p-value says about chance, in words that agree with p < alpha."""
    if not _finite(p):
        return "there are too few data to test it"
    if p < 0.001:
        return f"{what} this large is very unlikely to be chance (p < 0.001)"
    if p < alpha:
        return f"{what} this large is unlikely to be chance ({fmt.p_equals(p)})"
    return f"{what} this large could well be chance ({fmt.p_equals(p)})"


def rate_comparison(
    new: str,
    old: str,
    difference: Any,
    ci_low: Any,
    ci_high: Any,
    p: Any,
    verb: str = "overridden",
    alpha: float = ALPHA,
) -> str:
    """One sentence comparing two rates: "v2 is overridden 3.1 points less often than v1 (95% CI …); …"."""
    if not _finite(difference):
        return f"There are too few decisions to compare {new} with {old}."
    size = fmt.points(abs(difference), unit=False).lstrip("+")
    if size.strip("0.") == "":
        head = f"{new} is {verb} about as often as {old}"
    else:
        head = f"{new} is {verb} {size} points {'more' if difference > 0 else 'less'} often than {old}"
    ci = _sized_interval(difference, ci_low, ci_high, fmt.PROPORTION)
    return f"{head} (95% CI {ci}); {chance_clause(p, alpha)}."


def _sized_interval(difference: float, low: Any, high: Any, unit: str) -> str:
    """The interval of a difference next to a size stated with "more"/"less": as sizes when both ends
    lie on the side of the estimate ("2.1 to 4.0 points" less), signed when it spans zero."""
    if _finite(low) and _finite(high) and difference != 0 and (low > 0) == (high > 0) == (difference > 0):
        small, large = sorted((abs(low), abs(high)))
        return fmt.change_interval(small, large, unit).replace("+", "")
    return fmt.change_interval(low, high, unit)


def rate_sentence(
    subject: str, rate: Any, ci_low: Any, ci_high: Any, total: Any, share_of: str, noun: str = "decisions"
) -> str:
    """One sentence for a rate with its interval: "Reviewers overrode 11.8% of … (95% CI …; 2,578 decisions)."."""
    if not _finite(rate):
        return f"{subject} nothing yet: there are no {noun} in this period."
    return (
        f"{subject} {fmt.percent(rate)} of {share_of} (95% CI {fmt.interval(ci_low, ci_high, fmt.percent)}; "
        f"{fmt.count(total)} {noun})."
    )


def verdict(difference: Any, p: Any, direction: int, alpha: float = ALPHA) -> str:
    """better / worse / inconclusive for a metric whose good direction is known (higher / lower if not)."""
    if not _finite(difference) or not _finite(p) or p >= alpha or difference == 0:
        return "inconclusive"
    up = difference > 0
    if direction == 0:
        return "higher" if up else "lower"
    return "better" if up == (direction > 0) else "worse"


def effect_sentence(
    subject: str,
    metric_name: str,
    difference: Any,
    ci_low: Any,
    ci_high: Any,
    p: Any,
    unit: str,
    alpha: float = ALPHA,
    what: str = "a difference",
) -> str:
    """One sentence for an estimated effect: "With the AI shown, handling time is 14.3 s lower (95% CI …); …"."""
    if not _finite(difference):
        return f"{subject}, there are too few data to estimate the change in {metric_name}."
    size = fmt.change(abs(difference), unit).lstrip("+")
    if float(re.sub(r"[^\d.]", "", size) or 0) == 0:
        head = f"{subject}, {metric_name} is about the same"
    else:
        head = f"{subject}, {metric_name} is {size} {'higher' if difference > 0 else 'lower'}"
    return f"{head} (95% CI {_sized_interval(difference, ci_low, ci_high, unit)}); {chance_clause(p, alpha, what)}."


def normal_p(estimate: Any, se: Any) -> float | None:
    """Two-sided p-value of a normal test of estimate = 0 (the test behind a ±1.96 SE interval)."""
    if not _finite(estimate) or not _finite(se) or se <= 0:
        return None
    return math.erfc(abs(estimate / se) / math.sqrt(2))


def pretest_sentence(p: Any, test: str, alpha: float = ALPHA) -> str:
    """The parallel-trends pre-test in words that agree with its p-value and name the test they rest on."""
    if not _finite(p):
        return "The parallel-trends pre-test could not be run."
    if p < alpha:
        return (
            f"Evidence against parallel trends ({test}, {fmt.p_equals(p)}): before the rollout the units "
            "that got the AI were already moving differently, so treat the effect with caution."
        )
    return (
        f"No evidence against parallel trends ({test}, {fmt.p_equals(p)}); "
        "this supports, but cannot prove, the comparison."
    )


def verification_sentence(
    new: str, old: str, new_rate: Any, old_rate: Any, cases: Any, p: Any, alpha: float = ALPHA
) -> str:
    """Whether a newer version fixed a backlog pattern, from the one-sided test that `verified` requires."""
    head = (
        f"Here {new} is overridden {fmt.percent(new_rate)} of the time, against {fmt.percent(old_rate)} for {old} "
        f"({fmt.count(cases)} cases of {new})"
    )
    if _finite(p) and p < alpha and _finite(new_rate) and _finite(old_rate) and new_rate < old_rate:
        return f"{head}: significantly lower (one-sided {fmt.p_equals(p)}), so the fix can be marked verified."
    return f"{head}: not significantly lower (one-sided {fmt.p_equals(p)}), so the fix cannot be marked verified yet."


def breach_sentence(rows: list[dict[str, Any]], by: str) -> str:
    """The SLA breach rate in one sentence, from the resolution table's "all" row, naming the group that
    breaches most (`by` kind, severity or site)."""
    total = next((r for r in rows if r.get("key") == "all"), None)
    if total is None or not _finite(total.get("sla_breach_rate")):
        return "Too few exceptions have reached their SLA to estimate a breach rate."
    text = (
        f"An estimated {fmt.percent(total['sla_breach_rate'])} of exceptions miss their SLA "
        f"(95% CI {fmt.interval(total.get('sla_breach_ci_low'), total.get('sla_breach_ci_high'), fmt.percent)}; "
        f"{fmt.count(total.get('n'))} exceptions)"
    )
    groups = [r for r in rows if r.get("key") != "all" and _finite(r.get("sla_breach_rate"))]
    if len(groups) > 1:
        worst = max(groups, key=lambda r: r["sla_breach_rate"])
        name = kind_label(worst["key"]).lower() if by == "kind" else str(worst["key"])
        text += f"; {name} exceptions miss it most often ({fmt.percent(worst['sla_breach_rate'])})"
    return text + "."


def breakdown_name(model: Any, by: str) -> str:
    """What a breakdown is by, in words: "Claim band" for segment.claim_band, "Reason" for reason_code."""
    if by.startswith("segment."):
        return str(model.segment_label(by.removeprefix("segment.")))
    if by == "action_pair":
        return "Recommended → final action"
    return BREAKDOWN_LABELS.get(by, humanise(by))


def breakdown_cell(model: Any, by: str, key: Any) -> str:
    """One row's key in words: the reason's label, the segment value's label, the action pair's labels."""
    if key is None:
        return DASH_TEXT
    if by == "reason_code":
        return str(model.reason_label(key))
    if by.startswith("segment."):
        return str(model.segment_value_label(by.removeprefix("segment."), key))
    if by == "action_pair" and "→" in str(key):
        first, second = str(key).split("→", 1)
        return f"{model.action_label(first)} → {model.action_label(second)}"
    return str(key)


DASH_TEXT = fmt.DASH


def bar_geometry(low: Any, high: Any, estimate: Any, width: float = 100.0) -> dict[str, float] | None:
    """Where an interval bar's ends, its estimate and zero fall on a 0..width axis centred on zero.

    The axis runs from -m to +m with m the largest distance from zero, padded 10%, so zero sits
    in the middle and the bar shows at a glance which side of zero the interval lies on.
    """
    if not (_finite(low) and _finite(high) and _finite(estimate)):
        return None
    reach = max(abs(low), abs(high), abs(estimate)) * 1.1 or 1.0

    def x(v: float) -> float:
        return round(width / 2 + (width / 2) * v / reach, 2)

    return {"low": x(low), "high": x(high), "estimate": x(estimate), "zero": width / 2}
