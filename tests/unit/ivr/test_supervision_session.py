"""One call's supervision steps carried out: core events, MQTT messages valid against their
documented schema, the sidecar's marks and ``supervisor`` turns, the audit listener."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime

import jsonschema

from ivr.media_bridge import MediaBridge
from ivr.sip_events import CallEnded, CallOffered, DtmfReceived
from ivr.supervisor_leg import Supervision, SupervisorLeg
from ivr.supervisor_session import CallSupervision
from recordings.errors import RecordingError
from recordings.sidecar import SupervisionMark
from supervision.event_catalog import load_schema, schema_name
from supervision.supervisor_modes import ModeChange, SupervisionChanged


class Recorder:
    """The recorder's two calls the supervision makes, kept as data."""

    def __init__(self) -> None:
        self.turns: list[tuple[str, str, float, float]] = []
        self.marks: list[SupervisionMark] = []
        self.closed = False

    def add_turn(self, speaker: str, text: str, start_s: float, end_s: float) -> None:
        self.turns.append((speaker, text, start_s, end_s))

    def add_supervision(self, mark: SupervisionMark) -> None:
        if self.closed:
            raise RecordingError("call c: the recording is closed")
        self.marks.append(mark)


class Recording:
    def __init__(self) -> None:
        self.recorder = Recorder()


class Dialer:
    loop = asyncio.new_event_loop()  # never run: the future only records that the call is over

    def __init__(self) -> None:
        self.leg: SupervisorLeg | None = None

    def place_call(
        self, uri: str, ring_timeout_s: float, factory: Callable[[CallOffered], SupervisorLeg]
    ) -> tuple[int, asyncio.Future[SupervisorLeg]]:
        self.leg = factory(CallOffered(9, "outbound", "sip-id", uri, "sip:ivr@127.0.0.1", 0.0))
        return 9, self.loop.create_future()

    def hangup(self, call_key: int) -> None:
        """Nothing rings here."""


def test_steps_reach_the_core_mqtt_the_sidecar_and_the_audit() -> None:
    published: list[tuple[str, dict[str, object]]] = []
    posted: list[SupervisionChanged] = []
    audited: list[tuple[str, str | None, datetime]] = []
    recording = Recording()
    call = CallSupervision(
        "c",
        MediaBridge(),
        recording,  # type: ignore[arg-type]
        publish=lambda event, payload: published.append((event, payload)),
        post=posted.append,
        wall_offset=1_772_445_600.0,
    )
    dialer = Dialer()

    def audit(supervision: Supervision, change: ModeChange, at: datetime) -> None:
        audited.append((change.kind, change.mode, at))

    assert call.start("alice", "sip:+4915112345678@pbx", "listen", dialer, audit) is None
    assert (
        call.start("bob", "sip:bob@pbx", "listen", dialer, audit) == "the call is already supervised by alice"
    )
    assert dialer.leg is not None
    dialer.leg.bridge = MediaBridge()
    call.tick(1.0, position_s=4.0)
    dialer.leg.on_dtmf(DtmfReceived(9, "5", "rfc2833", 2.0))
    call.tick(2.0, position_s=5.0)
    dialer.leg.on_dtmf(DtmfReceived(9, "6", "rfc2833", 3.0))
    call.tick(3.0, position_s=6.0)
    dialer.leg.on_ended(CallEnded(9, 200, "ok", True, 9.0, False, "remote", 10.0))
    call.tick(10.0, position_s=13.0)

    assert posted == [SupervisionChanged(m) for m in ("listen", "barge", "takeover", None)]
    assert [(m.event, m.mode, m.at_s) for m in recording.recorder.marks] == [
        ("started", "listen", 4.0),
        ("mode_changed", "barge", 5.0),
        ("mode_changed", "takeover", 6.0),
        ("ended", None, 13.0),
    ]
    (turn,) = recording.recorder.turns
    assert turn[0] == "supervisor" and turn[2:] == (5.0, 13.0), "heard from the barge to the end"
    assert [kind for kind, _, _ in audited] == ["started", "mode_changed", "mode_changed", "ended"]
    schema = load_schema("call_supervision")
    for event, payload in published:
        assert schema_name(f"ivr/call/c/{event}", "ivr") == "call_supervision"
        jsonschema.validate({**payload, "ts": "2026-03-02T10:00:01.250Z"}, schema)
        assert "4915112345678" not in str(payload), "the supervisor's number is masked"
    assert published[0][1]["at"] == "2026-03-02T10:00:01Z"


def test_a_closed_recording_never_stops_the_call() -> None:
    recording = Recording()
    call = CallSupervision(
        "c",
        MediaBridge(),
        recording,  # type: ignore[arg-type]
        publish=lambda *_: None,
        post=lambda _: None,
        wall_offset=0.0,
    )
    dialer = Dialer()
    call.start("alice", "sip:alice@pbx", "barge", dialer, lambda *_: None)
    recording.recorder.closed = True
    call.close(5.0, position_s=5.0)
    assert (
        call.closed
        and call.start("alice", "sip:alice@pbx", "listen", dialer, lambda *_: None) == "the call has ended"
    )
