"""One call's stereo recording (left = caller, right = bot) plus its JSON sidecar.

Usage from the call's asyncio task (frames come off a queue, never from the media thread)::

    rec = DualTrackRecorder(settings.recordings_path, call_id, CallMetadata(...),
                            signing_key_file=settings.recordings_signing_key_path,
                            number_key_file=number_key_path(settings),
                            index_url=settings.database_url, index_settings=settings.database)
    rec.push_caller(frame); rec.push_bot(frame)       # any order, any burstiness
    rec.tick(now)                                      # optional, e.g. once a second
    rec.add_turn("caller", "check my balance", 3.2, 4.9, 0.82)
    rec.add_turn("bot", "Your balance is ...", 5.0, 5.6, interrupted=True)   # a barge-in stopped it
    rec.pause("card number"); ...; rec.resume()
    info = rec.close(end_time)

Semantics: ``push_*`` never block on the disk for long; audio is buffered about one second
(``flush_every_s``) before it is appended, and the WAV header is rewritten after every append so
the file stays playable if the process dies. ``tick(now)`` lets wall-clock time pad a side that
went quiet on both ends (hold, stalled media) with silence. ``close`` pads the shorter channel and
the whole file to the connected duration, fsyncs, re-reads the file to hash it (cost grows with
the call's length: run it in an executor for very long calls), writes the final sidecar and
appends a signed manifest of both files to the folder's hash chain
(:mod:`recordings.chain_store`), signed with the key at ``signing_key_file``. The sealed call is
then registered for the call index and, given ``index_url``, indexed at once
(:mod:`recordings.call_index`); a database that is down only delays that (never the seal): the
next ``recordings`` command or seal indexes it.

The numbers never reach the disk in clear: the sidecar holds them masked and as keyed hashes
(HMAC-SHA256 with the key at ``number_key_file``, see :mod:`recordings.numbers`), which is how
``recordings search --number`` finds them. ``tags`` ``campaign`` and ``contact_id`` are indexed
as the call's campaign and contact.

Files go to ``directory/YYYY/MM/DD/{call_id}.wav|.json`` (UTC date of ``started_at``; pass
``partition_by_date=False`` for a flat directory) and the call is registered in
``directory/.unfinished/`` until chained; files are 0600, folders 0700. The sidecar is
rewritten (atomically) with status ``recording`` at start and after each turn or pause, so a
crash keeps the transcript; :func:`recordings.recovery.recover_unfinished` finishes those at
next start.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from config.logs import log_event, mask_number
from config.settings import DatabaseSettings
from media.frames import FRAME_MS, FRAME_SAMPLES, SAMPLE_RATE, Frame
from recordings.call_index import index_now
from recordings.chain_store import SealedFiles, append_manifest
from recordings.errors import RecordingError
from recordings.index_spool import mark_unindexed
from recordings.numbers import default_number_key_file, load_number_key
from recordings.private_fs import make_private_dirs
from recordings.recovery import clear_unfinished, mark_unfinished
from recordings.sidecar import (
    LATENCY_KEYS,
    SPEAKERS,
    WAV_SUFFIX,
    AlertRecord,
    Direction,
    Pause,
    Sidecar,
    Status,
    SupervisionMark,
    Turn,
    check_call_id,
    iso,
    sidecar_path,
    write_sidecar,
)
from recordings.signing import default_key_file, load_signer
from recordings.track_aligner import TrackAligner
from recordings.wav_writer import WavWriter, file_sha256

_LOG = logging.getLogger("ivr.recordings")
FRAMES_PER_SECOND = 1000 // FRAME_MS


@dataclass(frozen=True)
class CallMetadata:
    """What the recorder is told about the call; numbers are masked before they reach the disk.

    ``started_at`` is when the call connected (the first sample of the recording).
    """

    direction: Direction
    from_number: str
    to_number: str
    started_at: datetime
    flow_name: str = ""
    flow_version: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class RecordingInfo:
    call_id: str
    wav_path: Path
    sidecar_path: Path
    status: Status
    duration_s: float
    sha256: str
    turns: int
    pauses: int


class DualTrackRecorder:
    def __init__(
        self,
        directory: Path,
        call_id: str,
        metadata: CallMetadata,
        *,
        max_lead_frames: int = 3,
        flush_every_s: float = 1.0,
        fsync_every_s: float = 10.0,
        partition_by_date: bool = True,
        signing_key_file: Path | None = None,
        number_key_file: Path | None = None,
        index_url: str = "",
        index_settings: DatabaseSettings | None = None,
    ) -> None:
        """``signing_key_file`` defaults to :func:`recordings.signing.default_key_file` and
        ``number_key_file`` to the number key next to it; both are loaded (or created) here so a
        bad key fails the first call, not its seal. ``index_url`` is the database of the call
        index (``settings.database_url``); empty: the call is only spooled for indexing."""
        check_call_id(call_id)
        iso(metadata.started_at)  # refuses a naive datetime before anything is created
        if metadata.direction not in ("inbound", "outbound"):
            raise RecordingError(
                f"call {call_id}: direction {metadata.direction!r} is not inbound or outbound"
            )
        day = metadata.started_at.astimezone(UTC)
        folder = directory / f"{day:%Y}" / f"{day:%m}" / f"{day:%d}" if partition_by_date else directory
        key_file = signing_key_file or default_key_file(directory)
        self._signer = load_signer(key_file)
        number_key = load_number_key(number_key_file or default_number_key_file(key_file))
        self._index_url = index_url
        self._index_settings = index_settings
        try:
            make_private_dirs(folder)
        except OSError as exc:
            raise RecordingError(f"{folder}: cannot create the recordings folder: {exc}") from exc
        self.root = directory
        self.call_id = call_id
        self.wav_path = folder / f"{call_id}{WAV_SUFFIX}"
        self.sidecar_path = sidecar_path(folder, call_id)
        if self.sidecar_path.exists():
            raise RecordingError(f"{self.sidecar_path}: a recording for call {call_id} already exists")
        mark_unfinished(directory, call_id, self.sidecar_path)
        self._started_at = metadata.started_at
        self._aligner = TrackAligner(max_lead=max_lead_frames)
        flush_frames = max(1, round(flush_every_s * SAMPLE_RATE))
        try:
            self._writer = WavWriter(
                self.wav_path,
                channels=2,
                sample_rate=SAMPLE_RATE,
                flush_every=flush_frames,
                fsync_every=max(1, math.ceil(fsync_every_s / max(flush_every_s, 1e-3))),
            )
        except RecordingError:
            clear_unfinished(directory, call_id)
            raise
        self._turns: list[Turn] = []
        self._alerts: list[AlertRecord] = []
        self._supervision: list[SupervisionMark] = []
        self._pause_reasons: list[str] = []
        self._sidecar = Sidecar(
            call_id=call_id,
            direction=metadata.direction,
            from_masked=mask_number(metadata.from_number),
            to_masked=mask_number(metadata.to_number),
            started_at=metadata.started_at,
            wav_name=self.wav_path.name,
            flow_name=metadata.flow_name,
            flow_version=metadata.flow_version,
            sample_rate=SAMPLE_RATE,
            tags=dict(metadata.tags),
            number_key_id=number_key.key_id,
            from_hmac=number_key.digest(metadata.from_number),
            to_hmac=number_key.digest(metadata.to_number),
        )
        self._info: RecordingInfo | None = None
        try:
            write_sidecar(self.sidecar_path, self._sidecar, durable=True)
        except OSError as exc:
            self._writer.close()
            clear_unfinished(directory, call_id)
            raise RecordingError(f"{self.sidecar_path}: cannot write sidecar: {exc.strerror}") from exc
        log_event("recording_started", logger=_LOG, call_id=call_id, path=str(self.wav_path))

    @property
    def closed(self) -> bool:
        return self._info is not None

    @property
    def position_s(self) -> float:
        """Seconds of audio on the timeline so far (the side furthest ahead)."""
        return self._aligner.position / FRAMES_PER_SECOND

    def push_caller(self, frame: Frame) -> None:
        self._push("caller", frame)

    def push_bot(self, frame: Frame) -> None:
        self._push("bot", frame)

    def tick(self, now: datetime) -> None:
        """Wall-clock time ``now`` has passed; pads sides that have fallen silent on both ends."""
        self._check_open()
        elapsed = (now - self._started_at).total_seconds()
        self._aligner.advance(int(elapsed * FRAMES_PER_SECOND))
        self._drain()

    def add_turn(
        self,
        speaker: str,
        text: str,
        start_s: float,
        end_s: float,
        confidence: float | None = None,
        *,
        interrupted: bool = False,
        latency: Mapping[str, float] | None = None,
    ) -> None:
        """Record who said what, when (seconds from the start of the recording).

        ``interrupted``: the caller barged in and the prompt was stopped at ``end_s`` (pass the
        prompt's full text); the sidecar marks the turn ``"interrupted": true`` for the QA rules.
        """
        self._check_open()
        where = f"call {self.call_id}: turn {len(self._turns)}"
        if speaker not in SPEAKERS:
            raise RecordingError(f"{where}: speaker {speaker!r} is not one of {', '.join(SPEAKERS)}")
        if not (math.isfinite(start_s) and math.isfinite(end_s)) or start_s < 0 or end_s < start_s:
            raise RecordingError(f"{where}: times must satisfy 0 <= start_s <= end_s, got {start_s}..{end_s}")
        if confidence is not None and not 0.0 <= confidence <= 1.0:
            raise RecordingError(f"{where}: confidence must be within 0..1, got {confidence}")
        marks = dict(latency) if latency else None
        if marks is not None and (
            set(marks) - set(LATENCY_KEYS) or not all(map(math.isfinite, marks.values()))
        ):
            raise RecordingError(
                f"{where}: latency marks must be finite {', '.join(LATENCY_KEYS)}, got {marks}"
            )
        self._turns.append(
            Turn(speaker, text, float(start_s), float(end_s), confidence, bool(interrupted), marks)
        )
        self._checkpoint()

    def add_alert(self, alert: AlertRecord) -> None:
        """A live supervision alert fired: kept in the sidecar with the transcript."""
        self._check_open()
        self._alerts.append(alert)
        self._checkpoint()

    def add_supervision(self, mark: SupervisionMark) -> None:
        """A supervisor joined, changed mode or left: kept in the sidecar with the transcript."""
        self._check_open()
        self._supervision.append(mark)
        self._checkpoint()

    def pause(self, reason: str = "") -> None:
        """Write silence on both channels until :meth:`resume` (e.g. while a card number is read)."""
        self._check_open()
        if not self._aligner.paused:
            self._aligner.pause()
            self._pause_reasons.append(reason)
            self._checkpoint()
            log_event("recording_paused", logger=_LOG, call_id=self.call_id, at_s=self.position_s)

    def resume(self) -> None:
        self._check_open()
        if self._aligner.paused:
            self._aligner.resume()
            self._checkpoint()
            log_event("recording_resumed", logger=_LOG, call_id=self.call_id, at_s=self.position_s)

    def close(self, end_time: datetime, outcome: str = "") -> RecordingInfo:
        """Finish the WAV (padded to the connected duration), hash it and seal the sidecar.

        Calling it again returns the same result.
        """
        if self._info is not None:
            return self._info
        connected_s = max(0.0, (end_time - self._started_at).total_seconds())
        connected_frames = int(connected_s * FRAMES_PER_SECOND)
        self._writer.write(self._aligner.finish(min_frames=connected_frames))
        # pjmedia's clock catches up in bursts after running late (a loaded machine), so a call
        # can receive a few more 20 ms ticks than its connected time: the file is the call.
        self._writer.truncate(connected_frames * FRAME_SAMPLES)
        self._writer.close()
        digest = file_sha256(self.wav_path)
        duration_s = self._writer.frames_written / SAMPLE_RATE
        self._sidecar = self._current_sidecar().with_changes(
            status="complete",
            ended_at=end_time,
            connected_duration_s=connected_s,
            duration_s=duration_s,
            sha256=digest,
            outcome=outcome,
        )
        sidecar_digest = write_sidecar(self.sidecar_path, self._sidecar, durable=True)
        # A crash before this line leaves the call registered: recovery chains it at next start.
        append_manifest(
            self.root,
            SealedFiles(self.call_id, "complete", self.wav_path, digest, self.sidecar_path, sidecar_digest),
            self._signer,
        )
        mark_unindexed(self.root, self.call_id, self.sidecar_path)
        clear_unfinished(self.root, self.call_id)
        index_now(self.root, [self.call_id], self._index_url, self._index_settings)
        self._info = RecordingInfo(
            call_id=self.call_id,
            wav_path=self.wav_path,
            sidecar_path=self.sidecar_path,
            status="complete",
            duration_s=duration_s,
            sha256=digest,
            turns=len(self._turns),
            pauses=len(self._sidecar.pauses),
        )
        log_event(
            "recording_closed",
            logger=_LOG,
            call_id=self.call_id,
            duration_s=round(duration_s, 3),
            turns=len(self._turns),
            sha256=digest,
        )
        return self._info

    def _push(self, side: str, frame: Frame) -> None:
        self._check_open()
        if side == "caller":
            self._aligner.push_caller(frame)
        else:
            self._aligner.push_bot(frame)
        self._drain()

    def _drain(self) -> None:
        ready = self._aligner.pull()
        if ready.size:
            self._writer.write(ready)

    def _check_open(self) -> None:
        if self._info is not None:
            raise RecordingError(f"call {self.call_id}: recording is already closed")

    def _current_sidecar(self) -> Sidecar:
        pauses = tuple(
            Pause(
                start_s=span.start_frame / FRAMES_PER_SECOND,
                end_s=None if span.end_frame is None else span.end_frame / FRAMES_PER_SECOND,
                reason=reason,
            )
            for span, reason in zip(self._aligner.pauses, self._pause_reasons, strict=True)
        )
        return self._sidecar.with_changes(
            turns=tuple(self._turns), pauses=pauses, alerts=tuple(self._alerts)
        ).with_changes(supervision=tuple(self._supervision))

    def _checkpoint(self) -> None:
        """Keep the on-disk sidecar current so a crash loses no transcript (no fsync: cheap)."""
        self._sidecar = self._current_sidecar()
        write_sidecar(self.sidecar_path, self._sidecar, durable=False)
