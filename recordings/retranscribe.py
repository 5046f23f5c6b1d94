"""Re-transcribing a sealed recording's tracks for QA, from its stereo WAV.

Why: a live call transcribes the caller only while the flow listens. Speech over a prompt that
may not be barged into (a risk disclosure) is never decoded, so it leaves no caller turn, and
the rule that forbids talking over the disclosure has nothing to see. The WAV holds the
evidence: each track is cut into utterances by the same VAD and endpointer as a live call, and
each utterance is decoded by an :class:`~media.asr.base.AsrEngine`, in the batch the speech
pool's low-priority lane (:meth:`media.speech_pool.SpeechPool.offline_engine`).

What is listened for: the caller's phrases the call's rules look for (acknowledgements,
forbidden phrases, the answers an outcome needs; :func:`caller_phrases`), as a grammar, like a
live step. That is what the rules can use, it is what the live recognizer does best, and it
costs ~50 ms an utterance, where open-vocabulary pocketsphinx ran 1-3x slower than the audio and
got few words right. Speech that is none of them still becomes a turn (``[not recognised]``):
its times are what the talk-over and silence rules need; so does a phrase heard with a
confidence under :data:`MIN_CONFIDENCE`. With no phrases, the decoding is open.

What is kept: the engine's own turns are the better record of what it heard (decoded against
the step's grammar) and of what the bot said (the text it rendered), so a re-transcribed
utterance is *added* only where its track has no turn at that time, marked
``"retranscribed": true``. A track with no transcript at all takes every utterance. The sealed
sidecar is never changed: the additions live in the QA result only.

A worker that dies mid-utterance fails it (:class:`~config.errors.MediaError`); the utterance is
retried on a fresh stream (the pool fails over to a live worker) and logged as
``qa.retranscribe_retry``; after ``retries`` failures :class:`RetranscribeError` names the call,
the track and the time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from config.errors import MediaError
from config.logs import log_event
from config.settings import MediaSettings
from media.asr.base import AsrEngine, AsrStream, Expectation, FinalResult
from media.endpointer import Endpointer, EndpointerConfig, SpeechEnded, UtteranceTooLong
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, split_frames
from media.vad import make_vad
from recordings.errors import RecordingError
from recordings.qa_rules import Acknowledgement, ForbiddenPhrases, OutcomeConsistent, RuleSet
from recordings.wav_writer import read_wav_info

_LOG = logging.getLogger("ivr.recordings")
TRACKS = ("caller", "bot")
"""Stereo channel order of every recording: caller left, bot right."""
CHUNK_FRAMES = 15
"""Frames per request (0.3 s of audio): an offline request is what a live one may wait behind."""
TAIL_S = 0.1
NO_WORDS = "[not recognised]"
MIN_CONFIDENCE = 0.85
"""A grammar phrase heard with less (its weakest word's posterior) is not taken: a grammar forces
speech onto its phrases, and on recorded calls "Hello?" came out as "lawyer" (0.82) and
"don't" (0.78) while real answers scored above 0.9. The engine's own strict pass uses 0.85."""


class RetranscribeError(RecordingError):
    """A track could not be re-transcribed (unreadable WAV, or the speech service kept failing)."""


@dataclass(frozen=True)
class Utterance:
    """Speech on one track, seconds from the start of the recording, with its audio."""

    start_s: float
    end_s: float
    samples: npt.NDArray[np.int16]


def read_tracks(wav_path: Path) -> dict[str, npt.NDArray[np.int16]]:
    """The caller and bot tracks of a sealed stereo recording."""
    info = read_wav_info(wav_path)
    if info.channels != 2 or info.sample_rate != SAMPLE_RATE:
        raise RetranscribeError(
            f"{wav_path}: expected a {SAMPLE_RATE} Hz stereo recording, got {info.channels} channel(s) "
            f"at {info.sample_rate} Hz"
        )
    with open(wav_path, "rb") as handle:
        handle.seek(info.data_offset)
        data = handle.read(info.frames * 4)
    stereo = np.frombuffer(data, dtype="<i2").astype(np.int16).reshape(-1, 2)
    return {track: np.ascontiguousarray(stereo[:, n]) for n, track in enumerate(TRACKS)}


def utterances(samples: npt.NDArray[np.int16], settings: MediaSettings | None = None) -> list[Utterance]:
    """Cut a track into utterances with the live call's VAD and endpointer (pure, no clock)."""
    media = settings or MediaSettings()
    endpointer = Endpointer(EndpointerConfig.from_settings(media), make_vad(media))
    pre_roll = media.pre_roll_ms / 1000
    frame_s = FRAME_SAMPLES / SAMPLE_RATE
    frames = split_frames(samples)
    spans: list[tuple[float, float]] = []
    for n, frame in enumerate(frames):
        for event in endpointer.push_frame(frame, n * frame_s):
            if isinstance(event, SpeechEnded | UtteranceTooLong):
                spans.append((event.at - event.duration, event.at))
    if endpointer.in_speech and endpointer.speech_onset is not None:  # still talking at the end
        spans.append((endpointer.speech_onset, len(frames) * frame_s))
    found = []
    for start, end in spans:
        first = max(0, round((start - pre_roll) * SAMPLE_RATE))
        last = min(samples.size, round((end + TAIL_S) * SAMPLE_RATE))
        found.append(Utterance(start, end, samples[first:last]))
    return found


def caller_phrases(rules: RuleSet) -> tuple[str, ...]:
    """The phrases ``rules`` look for in what the caller says, as spoken words: keys (``#1``) and
    templates are left out, since a recognizer cannot hear them."""
    found: list[str] = []
    for rule in rules.rules:
        check = rule.check
        if isinstance(check, ForbiddenPhrases) and check.speaker in ("caller", "any"):
            found += [p.text for p in check.phrases]
        says = check.says if isinstance(check, Acknowledgement) else None
        if isinstance(check, OutcomeConsistent):
            says = check.caller_says
        if says is not None:
            found += [p.text for p in (*says.phrases, *says.not_phrases)]
    spoken = [" ".join(text.lower().replace(",", " ").replace(".", " ").split()) for text in found]
    return tuple(
        dict.fromkeys(
            t for t in spoken if t and "#" not in t and "{" not in t and not any(c.isdigit() for c in t)
        )
    )


def tracks_to_redo(sidecar: Mapping[str, Any], requested: bool) -> list[str]:
    """The tracks to re-transcribe: one with no transcript, and the caller's on request (the
    bot's own turns are the text it rendered, better than any recognizer)."""
    turns = sidecar.get("turns", [])
    turns = turns if isinstance(turns, list) else []
    has_text = {
        track: any(
            isinstance(t, Mapping) and t.get("speaker") == track and str(t.get("text", "")).strip()
            for t in turns
        )
        for track in TRACKS
    }
    return [track for track in TRACKS if not has_text[track] or (requested and track == "caller")]


def merge_turns(sidecar: Mapping[str, Any], track: str, heard: list[dict[str, Any]]) -> dict[str, Any]:
    """A copy of the sidecar with the re-transcribed turns of ``track`` that overlap none of its
    own turns (all of them when it has none), in time order."""
    turns = [t for t in sidecar.get("turns", []) if isinstance(t, Mapping)]
    own = [(float(t.get("start_s", 0)), float(t.get("end_s", 0))) for t in turns if t.get("speaker") == track]
    added = [t for t in heard if not any(t["start_s"] < end and start < t["end_s"] for start, end in own)]
    merged = dict(sidecar)
    merged["turns"] = sorted([*turns, *added], key=lambda t: float(t.get("start_s", 0)))
    return merged


class Retranscriber:
    """Decodes utterances through ``engine`` (see the module docstring); given as a function, the
    engine is made on first use, so a batch with nothing to decode starts no speech pool."""

    def __init__(
        self,
        engine: AsrEngine | Callable[[], AsrEngine],
        settings: MediaSettings | None = None,
        *,
        retries: int = 2,
        retry_delay_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._engine = engine
        self.settings = settings or MediaSettings()
        self.retries = retries
        self.retry_delay_s = retry_delay_s
        self._sleep = sleep

    @property
    def engine(self) -> AsrEngine:
        if not isinstance(self._engine, AsrEngine):
            self._engine = self._engine()
        return self._engine

    def turns(
        self, samples: npt.NDArray[np.int16], track: str, call_id: str = "", phrases: tuple[str, ...] = ()
    ) -> list[dict[str, Any]]:
        """The track's utterances as sidecar turns (``retranscribed: true``), decoded against
        ``phrases`` (open vocabulary without)."""
        found = utterances(samples, self.settings)
        if not found:
            return []
        expectation = Expectation(phrases, open_vocabulary=False) if phrases else Expectation()
        try:
            stream = self.engine.open_stream(expectation)
        except MediaError as exc:  # the speech service did not start
            raise RetranscribeError(f"call {call_id}: cannot re-transcribe the {track} track: {exc}") from exc
        heard: list[dict[str, Any]] = []
        try:
            for utterance in found:
                result, stream = self._decode(stream, expectation, utterance, track, call_id)
                sure = not phrases or (result.in_grammar and result.confidence >= MIN_CONFIDENCE)
                text = result.text.strip() if sure else ""
                heard.append(
                    {
                        "speaker": track,
                        "text": text or NO_WORDS,
                        "start_s": round(utterance.start_s, 3),
                        "end_s": round(utterance.end_s, 3),
                        "confidence": round(min(1.0, max(0.0, result.confidence)), 3),
                        "retranscribed": True,
                    }
                )
        finally:
            stream.close()
        return heard

    def _decode(
        self, stream: AsrStream, expectation: Expectation, utterance: Utterance, track: str, call_id: str
    ) -> tuple[FinalResult, AsrStream]:
        frames = split_frames(utterance.samples)
        for attempt in range(self.retries + 1):
            try:
                for n in range(0, len(frames), CHUNK_FRAMES):
                    stream.push_frames(frames[n : n + CHUNK_FRAMES])
                return stream.flush(), stream
            except MediaError as exc:
                where = f"{track} track at {utterance.start_s:.2f}-{utterance.end_s:.2f}s"
                if attempt == self.retries:
                    log_event(
                        "qa.retranscribe_failed",
                        logging.ERROR,
                        _LOG,
                        call_id=call_id,
                        track=track,
                        error=str(exc),
                    )
                    raise RetranscribeError(
                        f"call {call_id}: cannot re-transcribe the {where}: the speech service failed "
                        f"{attempt + 1} times ({exc})"
                    ) from exc
                log_event(
                    "qa.retranscribe_retry",
                    logging.WARNING,
                    _LOG,
                    call_id=call_id,
                    track=track,
                    at_s=round(utterance.start_s, 2),
                    attempt=attempt + 1,
                    error=str(exc),
                )
                stream.close()  # a stream on a dead worker: the next one opens on a live worker
                self._sleep(self.retry_delay_s * 2**attempt)
                stream = self.engine.open_stream(expectation)
        raise AssertionError("unreachable")


def retranscribed(
    sidecar: Mapping[str, Any],
    wav_path: Path,
    transcriber: Retranscriber,
    requested: bool,
    phrases: tuple[str, ...] = (),
) -> tuple[dict[str, Any], dict[str, int]]:
    """The sidecar as QA should judge it, and how many turns each re-transcribed track gained;
    the caller's track is decoded against ``phrases`` (:func:`caller_phrases`)."""
    todo = tracks_to_redo(sidecar, requested)
    merged = dict(sidecar)
    if not todo:
        return merged, {}
    try:
        tracks = read_tracks(wav_path)
    except OSError as exc:
        raise RetranscribeError(f"{wav_path}: cannot read: {exc.strerror}") from exc
    added: dict[str, int] = {}
    call_id = str(sidecar.get("call_id", ""))
    for track in todo:
        before = len(merged.get("turns", []))
        listen_for = phrases if track == "caller" else ()
        merged = merge_turns(merged, track, transcriber.turns(tracks[track], track, call_id, listen_for))
        added[track] = len(merged["turns"]) - before
    return merged, added
