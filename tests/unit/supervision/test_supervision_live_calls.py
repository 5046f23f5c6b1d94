"""The live calls view replayed from call events: a real core's events, then hostile ones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flows.model import Flow
from ivr.call_vocabulary import DigitReceived, Publish, RaiseAlert
from supervision.live_calls import MAX_CALLS, LiveCalls
from tests.unit.ivr.call_replay import SimulatedCall, load_test_flow
from tests.unit.supervision.test_supervision_call_watch import FLOW, start

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def flow(tmp_path_factory: pytest.TempPathFactory) -> Flow:
    return load_test_flow(tmp_path_factory.mktemp("live"), FLOW)


def events(call: SimulatedCall) -> list[tuple[str, dict[str, object]]]:
    """What the session would publish for the call's commands, as (event, payload)."""
    out: list[tuple[str, dict[str, object]]] = []
    for _, command in call.log:
        if isinstance(command, Publish):
            out.append((command.event, dict(command.payload)))
        elif isinstance(command, RaiseAlert):
            out.append(("alert", dict(command.payload)))
    return out


def test_a_replayed_call_shows_its_step_transcript_alerts_and_end(flow: Flow) -> None:
    call = start(flow)
    call.until_quiet()
    call.hear("check my balance or I get a lawyer")
    call.until_quiet()
    for key in "4321":
        call.feed(DigitReceived(key, "rfc2833"))
    call.until_quiet()
    live = LiveCalls("ivr", max_lines=3)
    live.apply(
        "ivr/call/c1/connected", {"direction": "inbound", "remote": "+49***78", "flow": "watch-test"}, NOW
    )
    for index, (event, payload) in enumerate(events(call)):
        assert live.apply(f"ivr/call/c1/{event}", payload, NOW + timedelta(seconds=index)) == "c1"
    (view,) = live.view(NOW + timedelta(seconds=40))
    assert view["flow"] == "watch-test" and view["step"] == "done" and view["elapsed_s"] == 40.0
    assert [line["text"] for line in view["lines"]] == [  # type: ignore[attr-defined]
        "Your card number?",
        "[redacted: 4 digits]",
        "Thanks.",
    ]
    assert [a["rule"] for a in view["alerts"]] == ["legal"]  # type: ignore[attr-defined]
    live.apply(
        "ivr/call/c1/ended",
        {"outcome": "paid", "recording": "c1", "duration_s": 9.0},
        NOW + timedelta(seconds=41),
    )
    (ended,) = live.view(NOW + timedelta(seconds=60))
    assert ended["ended"] is True and ended["outcome"] == "paid" and ended["elapsed_s"] == 41.0
    assert live.view(NOW + timedelta(seconds=72)) == [], "gone after linger_s"


def test_a_partial_shows_until_the_callers_final() -> None:
    live = LiveCalls()
    live.apply("ivr/call/c2/transcript", {"speaker": "caller", "kind": "partial", "text": "i want"}, NOW)
    assert live.view(NOW)[0]["partial"] == "i want"
    final = {"speaker": "caller", "kind": "final", "text": "i want my balance", "end_s": 3.0}
    live.apply("ivr/call/c2/transcript", final, NOW)
    (view,) = live.view(NOW)
    assert view["partial"] == "" and view["lines"] == [
        {"speaker": "caller", "text": "i want my balance", "end_s": 3.0}
    ]


@pytest.mark.parametrize(
    ("topic", "payload"),
    [
        ("ivr/dialer/x/attempt", {}),
        ("other/call/c/step", {"step": "a"}),
        ("ivr/call/c/step/extra", {"step": "a"}),
        ("ivr/call/c/step", ["not", "an", "object"]),
        ("ivr/call/c/step", {"step": 42}),
        ("ivr/call/c/connected", {"flow": ["x"]}),
        ("ivr/call/c/transcript", {"speaker": "caller", "kind": "shout", "text": "x"}),
        ("ivr/call/c/alert", {"rule": "r", "at_s": "soon"}),
    ],
)
def test_hostile_messages_change_nothing(topic: str, payload: object) -> None:
    live = LiveCalls()
    assert live.apply(topic, payload, NOW) is None
    assert live.calls == {} and live.rejected == 1


def test_unknown_events_are_ignored_and_calls_are_bounded() -> None:
    live = LiveCalls()
    assert live.apply("ivr/call/c/whatever", {}, NOW) is None and live.rejected == 0
    for index in range(MAX_CALLS + 5):
        live.apply(f"ivr/call/c{index}/connected", {"flow": "f"}, NOW + timedelta(milliseconds=index))
    assert len(live.calls) == MAX_CALLS and "c0" not in live.calls
