"""A drain of frames through :meth:`CallMediaPipeline.push_caller_frames` must do exactly what the
same frames do one by one through ``prompt_frame`` + ``push_caller_frame``: same events at the same
times, same ASR work, same counters. Replayed on real audio (espeak-ng over µ-law): the caller talks
over a prompt whose echo comes back, presses keys in-band, pauses mid-answer, clips, and sends a
few broken frames; the bot's frames arrive with jitter (none in one tick, two in the next). The
drain sizes are drawn by hypothesis, from 1 frame to 60.
"""

from __future__ import annotations

import itertools
import os
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from config.settings import MediaSettings
from media import g711
from media.asr.base import Expectation
from media.asr_work import AsrFeed, AsrWork
from media.audio_checks import decode_wav
from media.barge_in import BargeIn
from media.dtmf_detector import DtmfDigit, dtmf_tone
from media.endpointer import NoInput, SpeechEnded, SpeechPaused, SpeechStarted
from media.frames import FRAME_SAMPLES, Frame, split_frames
from media.pipeline import AudioRejected, CallMediaPipeline, MediaEvent
from media.vad import EnergyVad, VadBackend, WebRtcVad

pytestmark = pytest.mark.component
RATE = 8000


def _speak(text: str, voice: str = "en-us", speed: int = 160) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed")
    wav = subprocess.run(
        [espeak, "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    )
    return g711.ulaw_decode(g711.ulaw_encode(decode_wav(wav.stdout, f"espeak-ng {voice}"))).astype(np.float64)


def _silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * RATE))


@dataclass
class Scenario:
    caller: list[npt.NDArray[Any]]  # frames as the bridge hands them over, a few of them broken
    bot: list[list[npt.NDArray[Any]]]  # per tick, what the bot sent before the caller frame (jitter: 0-2)
    controls: dict[int, list[Callable[[CallMediaPipeline], object]]] = field(default_factory=dict)


@cache
def _scenario() -> Scenario:
    prompt = _speak(
        "Welcome to the hotline. Please tell me briefly what you are calling about.", "en+m3", 165
    )
    notice = _speak("This call is recorded for quality purposes.", "en+m3", 170)
    keys = np.concatenate(
        [np.concatenate([dtmf_tone(d, 0.08, -8.0, -9.0).astype(np.float64), _silence(0.08)]) for d in "1#5"]
    )
    ten = _speak("ten", "en-gb", 150)
    morning = _speak("in the morning", "en-gb", 150)
    near = np.concatenate(
        [
            _silence(1.5),
            _speak("I want to pay my bill", "en+f3", 180),  # over the prompt: barges in
            _silence(0.9),
            keys * 0.5 + np.resize(_speak("one", "en-us", 200), keys.size) * 0.2,  # keys over talk
            _silence(0.6),
            ten,
            _silence(0.25),  # "ten ... in the morning": a pause inside the answer
            morning,
            _silence(0.8),
            np.clip(_speak("yes", "en-us", 160) * 6, -32768, 32767),  # gain far too high: clipped
            _silence(1.2),
            _speak("agent please", "en-us", 160),  # over the notice that must be heard
            _silence(3.0),
        ]
    )
    n = near.size // FRAME_SAMPLES
    near = near[: n * FRAME_SAMPLES]
    out = np.zeros(near.size)  # what the bot plays: the prompt, later the notice
    out[: prompt.size] = prompt[: out.size]
    notice_at = int(9.0 * RATE)
    out[notice_at : notice_at + notice.size] = notice[: max(0, out.size - notice_at)]
    echo = np.concatenate([_silence(0.06), out])[: out.size] * 0.1  # -20 dB, 60 ms late
    noise = np.random.default_rng(7).standard_normal(near.size) * 25
    heard = np.clip(np.rint(near + echo + noise), -32768, 32767).astype(np.int16)
    caller: list[npt.NDArray[Any]] = list(split_frames(heard))[:n]
    caller[40] = caller[40][:100]  # a packet cut short
    caller[41] = np.full(FRAME_SAMPLES, np.nan)  # a broken producer
    caller[42] = caller[42].astype(np.float64) / 32767.0  # float samples: converted, not rejected
    sent = [f for f in split_frames(np.rint(out).astype(np.int16))][:n]
    rng = np.random.default_rng(3)
    bot: list[list[npt.NDArray[Any]]] = []
    carry: list[npt.NDArray[Any]] = []
    for i in range(n):
        carry.append(sent[i])
        if rng.random() < 0.15 and i + 1 < n:
            bot.append([])  # late: this tick's frame arrives with the next one
            continue
        bot.append(carry)
        carry = []
    bot[60] = [*bot[60], np.zeros(7, dtype=np.int16)]  # a broken prompt frame is skipped
    grammar = Expectation(
        phrases=("pay my bill", "ten in the morning", "yes", "agent"), open_vocabulary=False
    )
    prompt_end = prompt.size // FRAME_SAMPLES
    controls: dict[int, list[Callable[[CallMediaPipeline], object]]] = {
        0: [lambda p: p.prompt_started(True, 0.0), lambda p: p.start_listening(grammar, 4.0, 0.0)],
        prompt_end: [lambda p: p.prompt_finished(prompt_end * 0.02)],
        200: [lambda p: p.stop_listening(), lambda p: p.start_listening(grammar, 5.0, 4.0)],
        360: [lambda p: p.stop_listening(), lambda p: p.start_listening(Expectation(), 3.0, 7.2)],
        450: [lambda p: p.prompt_started(False, 9.0)],
        540: [lambda p: p.stop_listening(), lambda p: p.start_listening(grammar, 1.5, 10.8)],  # -> NoInput
        450 + notice.size // FRAME_SAMPLES: [lambda p: p.prompt_finished(9.0 + notice.size / RATE)],
    }
    return Scenario(caller, bot, controls)


def _vad(kind: str) -> VadBackend:
    return WebRtcVad(2) if kind == "webrtc" else EnergyVad(-38.0)


def _work_key(work: list[AsrWork]) -> list[object]:
    """ASR work comparable with ==: frames as bytes."""
    return [
        ("feed", tuple(f.tobytes() for f in w.frames), w.at, w.speech_started_at)
        if isinstance(w, AsrFeed)
        else w
        for w in work
    ]


def _state(p: CallMediaPipeline) -> tuple[object, ...]:
    return (p.frames_clipped, p.frames_rejected, p.barge_in.echo_gain_db, p.listening, p.endpointer.state)


def _cuts(sizes: list[int], n: int, controls: Mapping[int, object]) -> list[int]:
    """Drain boundaries: the drawn sizes, and every frame where a control call happens."""
    cuts = {0, n, *controls}
    at = 0
    for size in sizes:
        at += size
        if at >= n:
            break
        cuts.add(at)
    return sorted(c for c in cuts if c <= n)


def _run(
    kind: str, cuts: list[int], batched: bool
) -> tuple[list[list[MediaEvent]], list[object], list[object]]:
    sc = _scenario()
    pipeline = CallMediaPipeline(MediaSettings(), vad=_vad(kind), in_band_dtmf=True)
    per_frame: list[list[MediaEvent]] = []
    work: list[object] = []
    states: list[object] = []
    for start, stop in itertools.pairwise(cuts):
        for control in sc.controls.get(start, []):
            control(pipeline)
        frames = sc.caller[start:stop]
        starts = [i * 0.02 for i in range(start, stop)]
        if batched:
            per_frame += pipeline.push_caller_frames(frames, starts, sc.bot[start:stop])
        else:
            for frame, now, sent in zip(frames, starts, sc.bot[start:stop], strict=True):
                for out in sent:
                    pipeline.prompt_frame(out)
                per_frame.append(pipeline.push_caller_frame(frame, now))
        per_frame[-1] += pipeline.check_timers(stop * 0.02)
        work += _work_key(pipeline.take_asr_work())
        states.append(_state(pipeline))
    return per_frame, work, states


@cache
def _reference(kind: str, cuts: tuple[int, ...]) -> tuple[list[list[MediaEvent]], list[object], list[object]]:
    return _run(kind, list(cuts), batched=False)


@pytest.mark.parametrize("kind", ["webrtc", "energy"])
def test_media_pipeline_batch_scenario_exercises_every_event(kind: str) -> None:
    """The replay is worth comparing: it raises every kind of event the batch could get wrong."""
    n = len(_scenario().caller)
    events, work, _ = _reference(kind, tuple(_cuts([n], n, _scenario().controls)))
    kinds = {type(e) for frame in events for e in frame}
    assert {BargeIn, DtmfDigit, SpeechStarted, SpeechEnded, AudioRejected, NoInput} <= kinds
    assert sum(isinstance(e, AudioRejected) for frame in events for e in frame) == 2
    assert [e.digit for frame in events for e in frame if isinstance(e, DtmfDigit)] == list("1#5")
    if kind == "webrtc":
        assert SpeechPaused in kinds  # "ten ... in the morning"
    assert any(isinstance(w, tuple) and w[0] == "feed" for w in work)


@pytest.mark.parametrize("kind", ["webrtc", "energy"])
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sizes=st.lists(st.integers(min_value=1, max_value=60), min_size=1, max_size=400))
def test_media_pipeline_batch_equals_frame_by_frame(kind: str, sizes: list[int]) -> None:
    n = len(_scenario().caller)
    cuts = _cuts(sizes, n, _scenario().controls)
    expected = _reference(kind, tuple(cuts))
    got = _run(kind, cuts, batched=True)
    assert got[0] == expected[0]  # every frame's events, in order, with the same times
    assert got[1] == expected[1]  # the same ASR work at every drain boundary
    assert got[2] == expected[2]  # clipping and rejection counts, echo gain, listening, endpointer


def test_media_pipeline_batch_of_all_frames_keeps_frame_times() -> None:
    """One drain holding the whole call gives the same events as 20 ms drains."""
    n = len(_scenario().caller)
    controls = _scenario().controls
    one_by_one = _reference("webrtc", tuple(_cuts([1] * n, n, controls)))
    whole = _run("webrtc", _cuts([n], n, controls), batched=True)
    flat = [e for frame in one_by_one[0] for e in frame]
    assert [e for frame in whole[0] for e in frame] == flat
    assert any(isinstance(e, BargeIn) for e in flat)


def test_media_pipeline_batch_rejects_mismatched_lengths() -> None:
    pipeline = CallMediaPipeline(MediaSettings())
    frame: Frame = np.zeros(FRAME_SAMPLES, dtype=np.int16)
    with pytest.raises(Exception, match="2 frames but 1 start times"):
        pipeline.push_caller_frames([frame, frame], [0.0])
    with pytest.raises(Exception, match="1 prompt frame lists"):
        pipeline.push_caller_frames([frame, frame], [0.0, 0.02], [[frame]])
    assert pipeline.push_caller_frames([], []) == []
