"""Issue 14, safe decisions: an answer that leads to a negative outcome (an order cancelled, a
number put on the do-not-call list) is double-checked before anything takes effect."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flows import (
    DtmfDigit,
    EmitEvent,
    FlowSession,
    HangUp,
    Listen,
    NoInput,
    Play,
    Recognition,
    SetOutcome,
    load_flow,
)
from flows.model import Flow

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[3]
FLOW = """
flow: {name: orders}
settings: {max_no_input: 2, max_no_match: 2, on_failure: undecided}
negative_outcomes: [cancelled, do_not_call]
variables: {mode: ""}
globals:
  agent: false
  goodbye: false
  stop:
    phrases: [stop calling me]
    dtmf: "9"
    goto: dnc
    label: stop calls from us
steps:
  start:
    branch:
      - if: mode == 'menu'
        goto: menu
      - if: mode == 'own'
        goto: own
      - if: mode == 'strict'
        goto: strict
      - else: keep
  keep:
    ask: Do you want to keep your order?
    slot: yes_no
    yes: kept
    no: cancel
  own:
    ask: Do you want to keep your order?
    slot: yes_no
    confirm: negative
    confirm_negative_prompt: "Just to be sure, as I will cancel it otherwise: do you want to keep it?"
    yes: kept
    no: about_to_cancel
  strict:
    ask: Keep it?
    slot: yes_no
    confirm: never
    yes: kept
    no: cancel
  menu:
    ask: Say change my order, or cancel my order.
    intents:
      change: {phrases: [change my order], dtmf: "1", goto: kept}
      cancel_it: {phrases: [cancel my order], dtmf: "2", goto: cancel, label: cancel your order}
  about_to_cancel:
    next: cancel
  cancel:
    outcome: cancelled
    emit: order_cancelled
    say: Your order is cancelled.
    hangup: true
  kept:
    say: Thank you.
    hangup: kept
  dnc:
    outcome: do_not_call
    say: We will not call you again.
    hangup: true
  undecided:
    say: We'll call again.
    hangup: no_decision
"""
ASK_AGAIN = "Just to be sure, I'll ask you once more."
KEEP = "Do you want to keep your order?"


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    path: Path = tmp_path_factory.mktemp("flows") / "orders.yaml"
    path.write_text(FLOW)
    return load_flow(path)


def started(flow: Flow, mode: str = "") -> FlowSession:
    session = FlowSession(flow, {"mode": mode}, NOW)
    session.start(NOW)
    return session


def plays(actions: Sequence[object]) -> list[str]:
    return [a.text for a in actions if isinstance(a, Play)]


def took_effect(actions: Sequence[object]) -> bool:
    return any(isinstance(a, SetOutcome | EmitEvent | HangUp) for a in actions)


def say(session: FlowSession, text: str, confidence: float = 0.9) -> list[object]:
    return list(session.handle(Recognition(text, confidence), NOW))


def test_the_flow_knows_which_steps_lead_to_a_negative_outcome(flow: Flow) -> None:
    assert flow.negative_outcomes == ("cancelled", "do_not_call")
    assert flow.negative_steps == {"about_to_cancel", "cancel", "dnc"}
    assert [str(w).split(": ", 1)[1] for w in flow.warnings] == [
        "warning: steps.strict.confirm: never, but the answer 'no' leads to the negative outcome "
        "'cancelled' (step 'cancel') on one unconfirmed answer; use confirm: negative "
        "(double-check only that answer) or auto"
    ]


def test_a_no_that_would_cancel_is_asked_again_before_anything_happens(flow: Flow) -> None:
    session = started(flow)
    actions = say(session, "no")
    assert not took_effect(actions)
    assert plays(actions) == [ASK_AGAIN, KEEP]
    assert actions[-1] == flow.listens["keep"] == session.listen
    assert session.state == "confirming" and session.outcome == "" and session.step == "keep"
    actions = say(session, "no not really")
    assert SetOutcome("cancelled") in actions and EmitEvent("order_cancelled", {}) in actions
    assert actions[-1] == HangUp("cancelled") and session.finished


def test_the_other_answer_the_second_time_goes_its_own_way(flow: Flow) -> None:
    session = started(flow)
    say(session, "not really", 0.84)
    actions = say(session, "yes that's correct")
    assert plays(actions) == ["Thank you."] and session.outcome == "kept"
    assert SetOutcome("cancelled") not in actions


def test_keys_are_double_checked_too(flow: Flow) -> None:
    session = started(flow)
    first = session.handle(DtmfDigit("2"), NOW)
    assert not took_effect(first) and plays(first) == [ASK_AGAIN, KEEP]
    assert session.handle(DtmfDigit("2"), NOW)[-1] == HangUp("cancelled")


def test_silence_or_an_unclear_reply_cancels_nothing(flow: Flow) -> None:
    session = started(flow)
    say(session, "no")
    actions = session.handle(NoInput(), NOW)
    assert not took_effect(actions) and plays(actions) == ["Sorry, I didn't hear anything.", KEEP]
    assert session.state == "listening"
    again = say(session, "no")
    assert not took_effect(again) and plays(again) == [ASK_AGAIN, KEEP]  # asked again, not taken
    unclear = say(session, "banana")
    assert not took_effect(unclear) and plays(unclear) == ["Sorry, I didn't understand.", KEEP]
    last = session.handle(NoInput(), NOW)
    assert last[-1] == HangUp("no_decision") and session.outcome == "no_decision"


def test_the_steps_own_prompt_replaces_the_question(flow: Flow) -> None:
    session = started(flow, "own")
    actions = say(session, "no")
    assert plays(actions) == ["Just to be sure, as I will cancel it otherwise: do you want to keep it?"]
    assert not took_effect(actions)
    assert say(session, "no")[-1] == HangUp("cancelled")  # through a step that asks nothing


def test_confirm_never_acts_on_one_answer(flow: Flow) -> None:
    """What the validator warns about."""
    session = started(flow, "strict")
    assert say(session, "no")[-1] == HangUp("cancelled")


def test_an_intent_that_cancels_is_double_checked_yes_or_no(flow: Flow) -> None:
    session = started(flow, "menu")
    actions = say(session, "please cancel my order")
    assert plays(actions) == ["Just to be sure: you want to cancel your order? Please say yes or no."]
    listen = actions[-1]
    assert isinstance(listen, Listen) and listen.slot == "yes_no" and listen.step == "menu"
    assert {"yes", "no", "cancel my order", "stop calling me"} <= set(listen.phrases)
    assert not listen.open_vocabulary
    rejected = say(session, "no")
    assert plays(rejected) == [
        "Sorry about that. Let's try again.",
        "Say change my order, or cancel my order.",
    ]
    assert not took_effect(rejected) and session.state == "listening"
    say(session, "cancel my order")
    assert say(session, "yes")[-1] == HangUp("cancelled")


def test_saying_the_same_request_again_counts_as_yes(flow: Flow) -> None:
    session = started(flow, "menu")
    say(session, "cancel my order")
    assert say(session, "cancel my order")[-1] == HangUp("cancelled")
    stop = started(flow, "menu")
    stop.handle(DtmfDigit("9"), NOW)
    assert stop.handle(DtmfDigit("9"), NOW)[-1] == HangUp("do_not_call")


def test_during_a_yes_no_check_keys_1_and_2_are_yes_and_no(flow: Flow) -> None:
    session = started(flow, "menu")
    session.handle(DtmfDigit("2"), NOW)  # cancel_it's key
    rejected = session.handle(DtmfDigit("2"), NOW)  # no: the safe reading
    assert not took_effect(rejected) and "Let's try again." in plays(rejected)[0]
    session.handle(DtmfDigit("2"), NOW)
    assert session.handle(DtmfDigit("1"), NOW)[-1] == HangUp("cancelled")


def test_a_global_intent_that_leads_to_a_negative_outcome_is_checked_even_at_confirm_never(
    flow: Flow,
) -> None:
    session = started(flow, "strict")
    actions = say(session, "stop calling me")
    assert plays(actions) == ["Just to be sure: you want to stop calls from us? Please say yes or no."]
    assert not took_effect(actions)
    assert say(session, "yes")[-1] == HangUp("do_not_call")
    keyed = started(flow, "strict")
    assert not took_effect(keyed.handle(DtmfDigit("9"), NOW))
    assert keyed.handle(DtmfDigit("1"), NOW)[-1] == HangUp("do_not_call")


def test_a_global_said_during_the_ask_again_is_checked_in_turn(flow: Flow) -> None:
    session = started(flow)
    say(session, "no")
    actions = say(session, "stop calling me")
    assert plays(actions) == ["Just to be sure: you want to stop calls from us? Please say yes or no."]
    assert not took_effect(actions)


def test_low_confidence_positive_answers_are_still_read_back(flow: Flow) -> None:
    session = started(flow, "menu")
    actions = say(session, "change my order", 0.3)
    assert plays(actions) == ["I think you said change my order. Is that right?"]
    own = started(flow, "own")  # confirm: negative reads nothing back
    assert plays(say(own, "yes", 0.3)) == ["Thank you."]


def test_issue_14_the_compliance_callback_asks_again_before_declining() -> None:
    """The live call: the callee said "yes that's correct", the bot heard "not really" (0.84)."""
    flow = load_flow(ROOT / "flows" / "library" / "compliance_callback.yaml")
    contact = {
        "first_name": "Maria",
        "last_name": "Lopez",
        "product": "the Acme Private Credit Fund",
        "amount": "25000",
        "purchase_date": "2026-02-20",
        "date_of_birth": "1980-07-04",
    }
    session = FlowSession(flow, {"contact": contact}, NOW)
    session.start(NOW)
    say(session, "yes")
    say(session, "the fourth of july nineteen eighty")
    assert session.step == "confirm_purchase"
    misheard = say(session, "not really", 0.84)
    assert not took_effect(misheard) and session.outcome == ""
    assert plays(misheard)[0].startswith("Just to be sure, because if not, this order will be cancelled")
    actions = say(session, "yes that's correct")
    assert session.step == "acknowledge" and not took_effect(actions)
    declined = FlowSession(flow, {"contact": contact}, NOW)
    declined.start(NOW)
    for text in ("yes", "July 4th 1980", "no", "no"):
        actions = say(declined, text)
    assert SetOutcome("declined") in actions and actions[-1] == HangUp("declined")
    assert declined.variables["decline_reason"] == "purchase_not_recognised"
