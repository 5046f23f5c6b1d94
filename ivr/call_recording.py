"""A connected call's recording: opened when the call connects, fed every frame that crossed the
media bridge, told the transcript's turns and pauses, and closed once the call is over.

The :class:`~recordings.DualTrackRecorder` writes the stereo WAV (caller left, bot and agent
right) and its signed sidecar; closing it finishes both files, so it runs on a worker thread.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime

from config.logs import log_event
from flows import Flow
from ivr.call_services import CallServices
from ivr.call_vocabulary import SetRecording, WriteTurn
from ivr.media_bridge import BridgeRecord
from ivr.sip_events import CallOffered
from media.frames import Frame
from recordings import CallMetadata, DualTrackRecorder, RecordingInfo
from recordings.numbers import number_key_path
from recordings.qa_batch import check_and_store
from recordings.qa_check import QaResult
from recordings.sidecar import AlertRecord

_log = logging.getLogger("ivr.call")


def campaign_tags(variables: Mapping[str, object]) -> dict[str, str]:
    """The campaign and contact a dialled call belongs to (``variables["campaign"]``, set by the
    dialer), as recording tags: the call index and QA rules find campaign calls by them."""
    campaign = variables.get("campaign")
    if not isinstance(campaign, Mapping):
        return {}
    return {
        tag: str(campaign[key])
        for tag, key in (("campaign", "name"), ("contact_id", "contact_id"))
        if campaign.get(key) not in (None, "")
    }


class CallRecording:
    """See the module docstring; numbers are masked by the recorder before they reach the disk."""

    def __init__(
        self,
        services: CallServices,
        call_id: str,
        offered: CallOffered,
        *,
        flow: Flow,
        codec: str,
        started: datetime,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        self._services = services
        self.qa: QaResult | None = None
        """The call's QA verdict once :meth:`close` judged it (None: not judged)."""
        settings = services.settings
        inbound = offered.direction == "inbound"
        self.recorder = DualTrackRecorder(
            services.settings.recordings_path,
            call_id,
            CallMetadata(
                direction=offered.direction,
                from_number=offered.remote_uri if inbound else offered.local_uri,
                to_number=offered.local_uri if inbound else offered.remote_uri,
                started_at=started,
                flow_name=flow.metadata.name,
                flow_version=flow.metadata.version,
                tags={"codec": codec, "sip_call_id": offered.sip_call_id, **(tags or {})},
            ),
            signing_key_file=settings.recordings_signing_key_path,
            number_key_file=number_key_path(settings),
            index_url=settings.database_url,
            index_settings=settings.database,
        )

    def push(self, record: BridgeRecord, frame: Frame) -> None:
        """One frame that crossed the bridge (``frame`` is ``record`` decoded)."""
        if record.side == "caller":
            self.recorder.push_caller(frame)
        else:
            self.recorder.push_bot(frame)

    def execute(self, command: WriteTurn | SetRecording) -> None:
        if isinstance(command, WriteTurn):
            self.recorder.add_turn(
                command.speaker,
                command.text,
                command.start_s,
                command.end_s,
                command.confidence,
                interrupted=command.interrupted,
                latency=command.latency,
            )
        elif command.paused:
            self.recorder.pause(command.reason)
        else:
            self.recorder.resume()

    def alert(self, payload: Mapping[str, object]) -> None:
        """A supervision alert (:class:`~ivr.call_vocabulary.RaiseAlert`), kept in the sidecar."""
        action = payload.get("action")
        at_s = payload.get("at_s", 0.0)
        self.recorder.add_alert(
            AlertRecord(
                rule=str(payload.get("rule", "")),
                kind=str(payload.get("kind", "")),
                severity=str(payload.get("severity", "medium")),
                at_s=float(at_s) if isinstance(at_s, int | float) else 0.0,
                evidence=str(payload.get("evidence", "")),
                action=dict(action) if isinstance(action, Mapping) else None,
            )
        )

    async def close(self, end: datetime, outcome: str) -> RecordingInfo:
        """Finish the WAV and its sidecar, then check the call against its QA rules (on a
        worker thread; a QA problem is logged, never raised: the call's record comes first)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._services.executor, self._close, end, outcome)

    def _close(self, end: datetime, outcome: str) -> RecordingInfo:
        info = self.recorder.close(end, outcome)
        services, settings = self._services, self._services.settings
        if services.qa_rules is not None:
            checked = check_and_store(
                info.sidecar_path,
                services.qa_rules,
                root=settings.recordings_path,
                index_url=settings.database_url,
                index_settings=settings.database,
            )
            result = checked.result if checked is not None else None
            self.qa = result
            if result is not None:
                log_event(
                    "call.qa",
                    logger=_log,
                    call_id=info.call_id,
                    status=result.status,
                    score=result.score,
                    failed=",".join(r.rule_id for r in result.failures) or None,
                )
        return info
