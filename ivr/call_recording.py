"""A connected call's recording: opened when the call connects, fed every frame that crossed the
media bridge, told the transcript's turns and pauses, and closed once the call is over.

The :class:`~recordings.DualTrackRecorder` writes the stereo WAV (caller left, bot and agent
right) and its signed sidecar; closing it finishes both files, so it runs on a worker thread.
"""

from __future__ import annotations

import asyncio
from datetime import datetime

from flows import Flow
from ivr.call_services import CallServices
from ivr.call_vocabulary import SetRecording, WriteTurn
from ivr.media_bridge import BridgeRecord
from ivr.sip_events import CallOffered
from media.frames import Frame
from recordings import CallMetadata, DualTrackRecorder, RecordingInfo


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
    ) -> None:
        self._services = services
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
                tags={"codec": codec, "sip_call_id": offered.sip_call_id},
            ),
            signing_key_file=services.settings.recordings_signing_key_path,
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
                command.speaker, command.text, command.start_s, command.end_s, command.confidence
            )
        elif command.paused:
            self.recorder.pause(command.reason)
        else:
            self.recorder.resume()

    async def close(self, end: datetime, outcome: str) -> RecordingInfo:
        """Finish the WAV and its sidecar (on a worker thread)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._services.executor, self.recorder.close, end, outcome)
