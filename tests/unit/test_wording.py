"""Labels for codes, a/an, and the one plain sentence per headline statistic (each branch)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest

from feedback import wording
from feedback.models import Model


@pytest.mark.parametrize(
    ("phrase", "expected"),
    [
        ("electronics", "an"),
        ("grocery", "a"),
        ("travel", "a"),
        ("elephant", "an"),
        ("umbrella", "an"),
        ("user", "a"),
        ("unit", "a"),
        ("European merchant", "a"),
        ("one-off", "a"),
        ("hour", "an"),
        ("honest mistake", "an"),
        ("house", "a"),
        ("SMS", "an"),
        ("FBI check", "an"),
        ("NHS claim", "an"),
        ("UK merchant", "a"),
        ("8 hour wait", "an"),
        ("11k claim", "an"),
        ("18", "an"),
        ("800", "an"),
        ("1k to 10k claim", "a"),
        ("100", "a"),
        ("", "a"),
    ],
)
def test_article_follows_the_sound(phrase, expected):
    assert wording.article(phrase) == expected


def test_with_article_fixes_at_a_electronics_merchant():
    assert f"at {wording.with_article('electronics')} merchant" == "at an electronics merchant"
    assert f"at {wording.with_article('grocery')} merchant" == "at a grocery merchant"


def test_codes_read_as_words_when_there_is_no_label():
    assert wording.humanise("raise_alert") == "Raise alert" and wording.humanise("claim_band") == "Claim band"
    assert wording.humanise(None) == "" and wording.humanise_value("over_10k") == "over 10k"
    assert wording.humanise_value(True) == "yes" and wording.humanise_value(3.0) == "3"
    assert wording.kind_label("audit_sample") == "Audit sample" and wording.kind_label("new_kind") == "New kind"


def test_a_model_uses_its_labels_and_falls_back_to_words():
    model = Model(
        actions=["raise_alert", "dismiss"],
        reason_codes=[{"code": "other", "label": "Other reason"}],
        action_labels={"raise_alert": "Raise an alert"},
        segment_labels={"claim_band": {"label": "Claim band", "values": {"1k_10k": "£1k to £10k", "true": "Yes"}}},
    )
    assert model.action_label("raise_alert") == "Raise an alert" and model.action_label("dismiss") == "Dismiss"
    assert model.action_label(None) == ""
    assert model.segment_label("claim_band") == "Claim band" and model.segment_label("card_present") == "Card present"
    assert model.segment_value_label("claim_band", "1k_10k") == "£1k to £10k"
    assert model.segment_value_label("claim_band", True) == "Yes"  # keyed by the value as JSON text
    assert model.segment_value_label("claim_band", "over_10k") == "over 10k"
    assert wording.breakdown_cell(model, "segment.claim_band", "1k_10k") == "£1k to £10k"
    assert wording.breakdown_cell(model, "reason_code", "other") == "Other reason"
    assert wording.breakdown_cell(model, "action_pair", "raise_alert→dismiss") == "Raise an alert → Dismiss"
    assert wording.breakdown_cell(model, "site", "Leeds") == "Leeds"
    assert wording.breakdown_name(model, "segment.claim_band") == "Claim band"
    assert wording.breakdown_name(model, "reason_code") == "Reason"


def test_model_without_labels_from_before_migration_reads_in_words():
    model = Model(actions=["pay"], reason_codes=[], action_labels=None, segment_labels=None)
    assert model.action_label("pay") == "Pay" and model.segment_label("claim_band") == "Claim band"


# --- comparing two rates ------------------------------------------------------------------------


def test_significant_decrease_says_less_often_with_sizes_and_very_unlikely():
    text = wording.rate_comparison("v2", "v1", -0.031, -0.040, -0.021, 1e-9)
    assert text == (
        "v2 is overridden 3.1 points less often than v1 (95% CI 2.1 to 4.0 points); "
        "a difference this large is very unlikely to be chance (p < 0.001)."
    )


def test_significant_increase_says_more_often():
    text = wording.rate_comparison("v2", "v1", 0.02, 0.004, 0.036, 0.02)
    assert text.startswith("v2 is overridden 2.0 points more often than v1 (95% CI 0.4 to 3.6 points)")
    assert text.endswith("a difference this large is unlikely to be chance (p = 0.02).")


def test_inconclusive_difference_keeps_the_signed_interval_and_says_chance():
    text = wording.rate_comparison("v2", "v1", -0.004, -0.029, 0.022, 0.762)
    assert "0.4 points less often" in text and "(95% CI -2.9 to +2.2 points)" in text
    assert text.endswith("could well be chance (p = 0.76).")


def test_no_difference_and_no_data():
    assert "about as often as v1" in wording.rate_comparison("v2", "v1", 0.0, -0.01, 0.01, 1.0)
    assert wording.rate_comparison("v2", "v1", None, None, None, None).startswith("There are too few decisions")


def test_chance_clause_agrees_with_alpha():
    assert "unlikely" in wording.chance_clause(0.049) and "could well" in wording.chance_clause(0.05)
    assert "could well" in wording.chance_clause(0.03, alpha=0.01) and "too few" in wording.chance_clause(math.nan)


def test_rate_sentence():
    text = wording.rate_sentence("Reviewers overrode", 0.118, 0.106, 0.132, 2498, "the recommendations", "decisions")
    assert text == "Reviewers overrode 11.8% of the recommendations (95% CI 10.6% to 13.2%; 2,498 decisions)."
    assert "no decisions" in wording.rate_sentence("Reviewers overrode", None, None, None, 0, "them")


# --- A/B verdicts and effect sentences ------------------------------------------------------------


@pytest.mark.parametrize(
    ("difference", "p", "direction", "expected"),
    [
        (-14.3, 0.03, -1, "better"),  # handling time fell
        (14.3, 0.03, -1, "worse"),
        (0.05, 0.001, 1, "better"),  # accuracy rose
        (-0.05, 0.001, 1, "worse"),
        (0.05, 0.2, 1, "inconclusive"),
        (-0.05, 0.05, -1, "inconclusive"),  # p must be below alpha
        (0.05, 0.01, 0, "higher"),  # no good direction: say which way
        (-0.05, 0.01, 0, "lower"),
        (None, 0.01, 1, "inconclusive"),
        (0.05, None, 1, "inconclusive"),
    ],
)
def test_verdict_knows_which_direction_is_good(difference, p, direction, expected):
    assert wording.verdict(difference, p, direction) == expected


def test_metric_directions_and_units():
    assert wording.metric_direction("handling_seconds") == -1 and wording.metric_direction("correct") == 1
    assert wording.metric_direction("override") == -1 and wording.metric_direction("value") == 0
    assert wording.metric_unit("median_handling_seconds") == "seconds" and wording.metric_unit("value") == ""


def test_effect_sentence_lower_higher_and_same():
    lower = wording.effect_sentence("With the AI shown", "handling time", -14.26, -31.1, -0.934, 0.0309, "seconds")
    assert lower == (
        "With the AI shown, handling time is 14.3 s lower (95% CI 0.934 to 31.1 s); "
        "a difference this large is unlikely to be chance (p = 0.03)."
    )
    higher = wording.effect_sentence("With the AI shown", "the override rate", 0.022, -0.034, 0.077, 0.41, "proportion")
    assert "is 2.2 points higher (95% CI -3.4 to +7.7 points)" in higher and "could well be chance" in higher
    same = wording.effect_sentence("With the AI shown", "accuracy", 0.00001, -0.01, 0.01, 0.99, "proportion")
    assert "accuracy is about the same" in same
    assert "too few data" in wording.effect_sentence("With the AI shown", "accuracy", None, None, None, None, "")


def test_normal_p_matches_the_interval():
    assert wording.normal_p(1.96, 1.0) == pytest.approx(0.05, abs=1e-4)
    assert wording.normal_p(0.0, 1.0) == pytest.approx(1.0) and wording.normal_p(1.0, 0) is None


# --- pre-test, SLA breaches, backlog verification --------------------------------------------------


def test_pretest_sentence_agrees_with_its_p_value():
    rejected = wording.pretest_sentence(2.79e-193, "Wald test")
    assert rejected.startswith("Evidence against parallel trends (Wald test, p < 0.001)") and "caution" in rejected
    kept = wording.pretest_sentence(0.479, "sup-t test")
    assert kept.startswith("No evidence against parallel trends (sup-t test, p = 0.48)")
    assert wording.pretest_sentence(0.049, "t").startswith("Evidence against")
    assert wording.pretest_sentence(0.05, "t").startswith("No evidence against")
    assert "could not be run" in wording.pretest_sentence(None, "t")


def test_breach_sentence_names_the_worst_group_in_words():
    rows = [
        {"key": "audit_sample", "sla_breach_rate": 0.185, "n": 92},
        {"key": "policy", "sla_breach_rate": 0.642, "n": 53},
        {"key": "model_error", "sla_breach_rate": None, "n": 3},
        {"key": "all", "sla_breach_rate": 0.145, "sla_breach_ci_low": 0.12, "sla_breach_ci_high": 0.172, "n": 738},
    ]
    assert wording.breach_sentence(rows, "kind") == (
        "An estimated 14.5% of exceptions miss their SLA (95% CI 12.0% to 17.2%; 738 exceptions); "
        "policy rule exceptions miss it most often (64.2%)."
    )
    assert "Leeds exceptions" in wording.breach_sentence(
        [{"key": "Leeds", "sla_breach_rate": 0.3}, {"key": "York", "sla_breach_rate": 0.1}, rows[-1]], "site"
    )
    assert wording.breach_sentence([{"key": "all", "sla_breach_rate": None}], "kind").startswith("Too few")


def test_verification_sentence_follows_the_one_sided_test():
    verified = wording.verification_sentence("v2", "v1", 0.109, 0.435, 110, 1e-6)
    assert "significantly lower (one-sided p < 0.001), so the fix can be marked verified" in verified
    assert "10.9%" in verified and "43.5%" in verified
    not_yet = wording.verification_sentence("v2", "v1", 0.40, 0.435, 30, 0.3)
    assert "not significantly lower (one-sided p = 0.30)" in not_yet and "cannot be marked verified" in not_yet


def test_bar_geometry_puts_zero_in_the_middle():
    bar = wording.bar_geometry(-31.1, -0.93, -14.3)
    assert bar["zero"] == 50 and bar["low"] < bar["estimate"] < bar["high"] < 50
    spanning = wording.bar_geometry(-0.03, 0.07, 0.02)
    assert spanning["low"] < 50 < spanning["high"]
    assert wording.bar_geometry(None, 1, 0) is None
    assert wording.bar_geometry(0, 0, 0) == {"low": 50, "high": 50, "estimate": 50, "zero": 50}


def test_breakdown_cell_of_nothing_is_a_dash():
    assert wording.breakdown_cell(SimpleNamespace(), "site", None) == "—"
