"""What monitoring learns of each call: its ``call.offered``, ``call.connected`` and ``call.ended``
log lines, the matching ``connected`` and ``ended`` events on MQTT, and the ``qa`` event with the
verdict of the call's QA rules when it was judged at its end.

The worker pool counts a worker's live calls from these lines, and dashboards count calls by
them, so every call the engine took logs exactly one ``call.ended``, answered or not. Numbers
are masked before they are logged or published.
"""

from __future__ import annotations

import logging
import secrets
import weakref

from config.logs import log_event, mask_number
from ivr.event_publisher import EventPublisher, call_topic
from ivr.sip_events import CallEnded, CallOffered
from recordings import RecordingInfo
from recordings.qa_check import QaResult
from supervision.feature_code import allocate_short_id

_log = logging.getLogger("ivr.call")
LIVE_SHORT_IDS: weakref.WeakValueDictionary[str, CallReports] = weakref.WeakValueDictionary()
"""Short id -> reports of this process's calls: what a supervisor dials after ``*77``
(docs/supervision.md). Loop thread only; an id is freed when its call's end is reported (or,
for a call whose end never is, e.g. a placed call that failed, when its session is dropped)."""


def _draw(low: int, high: int) -> int:
    return low + secrets.randbelow(high - low + 1)


class CallReports:
    """One call's reports; logs ``call.offered`` when created."""

    def __init__(self, call_id: str, offered: CallOffered, publisher: EventPublisher) -> None:
        self.call_id = call_id
        self._offered = offered
        self._publisher = publisher
        self.short_id = allocate_short_id(LIVE_SHORT_IDS, _draw)
        LIVE_SHORT_IDS[self.short_id] = self
        log_event(
            "call.offered",
            logger=_log,
            call_id=call_id,
            short_id=self.short_id,
            direction=offered.direction,
            remote=mask_number(offered.remote_uri),
            sip_call_id=offered.sip_call_id,
        )

    def publish(self, event: str, payload: dict[str, object]) -> None:
        """An event on ``ivr/call/<id>/<event>``."""
        self._publisher.publish(call_topic(self.call_id, event), payload)

    def connected(self, codec: str, flow_name: str) -> None:
        log_event(
            "call.connected",
            logger=_log,
            call_id=self.call_id,
            short_id=self.short_id,
            codec=codec,
            flow=flow_name,
        )
        direction, remote = self._offered.direction, mask_number(self._offered.remote_uri)
        payload: dict[str, object] = {"direction": direction, "remote": remote, "flow": flow_name}
        payload["short_id"] = self.short_id
        self.publish("connected", payload)

    def _free_short_id(self) -> None:
        if LIVE_SHORT_IDS.get(self.short_id) is self:
            del LIVE_SHORT_IDS[self.short_id]

    def not_connected(self, event: CallEnded, outcome: str) -> None:
        """The call was released before it was confirmed (no ACK, 408, CANCEL)."""
        self._free_short_id()
        log_event(
            "call.ended",
            logger=_log,
            call_id=self.call_id,
            outcome=outcome,
            status=event.status_code,
            reason=event.reason,
            connected_s=0,
        )
        self.publish("ended", {"outcome": outcome, "recording": None, "duration_s": 0.0})

    def qa(self, result: QaResult | None) -> None:
        """The call's QA verdict, judged once its recording was sealed (None: not judged, e.g. no
        rules file claims its flow; nothing is published)."""
        if result is not None:
            self.publish("qa", qa_payload(result))

    def ended(self, outcome: str, ended: CallEnded | None, recording: RecordingInfo) -> None:
        """A connected call is over and its recording closed (``ended`` is None when SIP never
        reported the end, e.g. at shutdown)."""
        self._free_short_id()
        log_event(
            "call.ended",
            logger=_log,
            call_id=self.call_id,
            outcome=outcome or "none",
            status=ended.status_code if ended else 0,
            hung_up_by=ended.hung_up_by if ended else "local",
            connected_s=round(ended.connected_s, 3) if ended else 0,
            recording=str(recording.wav_path),
        )
        duration_s = round(recording.duration_s, 3)
        self.publish("ended", {"outcome": outcome, "recording": recording.call_id, "duration_s": duration_s})


def qa_payload(result: QaResult) -> dict[str, object]:
    """The ``qa`` event: the verdict, and for each failing rule what a team lead needs to decide
    whether to listen (its times and why). The whole result stays in the call's ``.qa.json``;
    the details quote the recording's text, so redacted answers stay redacted."""
    failed = [
        {
            "rule": rule.rule_id,
            "kind": rule.kind,
            "critical": rule.critical,
            "detail": rule.detail,
            "at": [span.to_json() for span in rule.spans],
        }
        for rule in result.failures
    ]
    return {
        "status": result.status,
        "score": result.score,
        "pass_score": result.pass_score,
        "outcome": result.outcome,
        "flow": {"name": result.flow_name, "version": result.flow_version},
        "rules": {"name": result.rules_name, "version": result.rules_version, "sha256": result.rules_sha256},
        "failed": failed,
        "not_evaluable": [rule.rule_id for rule in result.not_evaluable],
    }
