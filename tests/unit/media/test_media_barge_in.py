"""Barge-in decisions on synthetic voices: echo of the prompt never triggers, the caller does."""

from __future__ import annotations

import numpy as np
import pytest

from config.errors import MediaError
from media.barge_in import BargeIn, BargeInConfig, BargeInDetector
from media.frames import FRAME_SAMPLES, split_frames
from media.vad import WebRtcVad

RATE = 8000


def voice(seconds: float, f0: float, seed: int, level: float = 6000.0) -> np.ndarray:
    """Speech-like audio: a gliding harmonic buzz with syllables (4 per second) and pauses."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    pitch = f0 * (1 + 0.08 * np.sin(2 * np.pi * 1.3 * t + rng.uniform(0, 6)))
    phase = 2 * np.pi * np.cumsum(pitch) / RATE
    buzz = sum(np.sin(k * phase) * np.exp(-k / 8) for k in range(1, 30))
    syllables = np.clip(np.sin(2 * np.pi * 4 * t + rng.uniform(0, 6)), 0, None) ** 0.5
    sig = buzz * syllables * (1 + 0.05 * rng.standard_normal(t.size))
    out: np.ndarray = level * sig / np.max(np.abs(sig))
    return out


def echo_of(prompt: np.ndarray, gain_db: float, delay_ms: int) -> np.ndarray:
    delayed = np.concatenate([np.zeros(delay_ms * RATE // 1000), prompt])[: prompt.size]
    return delayed * 10 ** (gain_db / 20)


def run(
    prompt: np.ndarray, caller: np.ndarray, allowed: bool = True, config: BargeInConfig | None = None
) -> tuple[list[BargeIn], list[bool]]:
    detector = BargeInDetector(config)
    vad = WebRtcVad(2)
    detector.prompt_started(allowed, now=0.0)
    noise = np.random.default_rng(99).standard_normal(caller.size) * 30  # line noise, about -60 dBFS
    caller16 = np.clip(caller + noise, -32768, 32767).astype(np.int16)
    events: list[BargeIn] = []
    flags: list[bool] = []
    pairs = zip(split_frames(prompt.astype(np.int16)), split_frames(caller16), strict=True)
    for i, (p, c) in enumerate(pairs):
        detector.prompt_frame(p)
        speaking, event = detector.update(c, vad.is_speech(c), i * 0.02)
        flags.append(speaking)
        if event:
            events.append(event)
    return events, flags


@pytest.mark.parametrize("delay_ms", [0, 40, 120, 200])
@pytest.mark.parametrize("gain_db", [-30.0, -20.0, -12.0])
def test_media_barge_in_prompt_echo_never_triggers(delay_ms: int, gain_db: float) -> None:
    prompt = voice(6.0, 140, seed=1, level=12000)
    events, flags = run(prompt, echo_of(prompt, gain_db, delay_ms))
    assert events == []
    assert sum(flags) <= 2  # the echo is not taken for the caller talking


def test_media_barge_in_strong_echo_is_learned() -> None:
    """A bad line (echo only 6 dB down) raises the echo estimate instead of triggering."""
    prompt = voice(6.0, 140, seed=2, level=12000)
    detector_events, _ = run(prompt, echo_of(prompt, -6.0, 80))
    assert detector_events == []


@pytest.mark.parametrize("echo_db", [-30.0, -20.0, -12.0])
def test_media_barge_in_caller_over_the_prompt_triggers_within_100_ms(echo_db: float) -> None:
    prompt = voice(4.0, 140, seed=3, level=12000)
    caller = np.zeros(prompt.size)
    onset = int(2.0 * RATE)
    talk = voice(1.5, 210, seed=4, level=9000)
    talk[:80] *= np.linspace(0, 1, 80)
    caller[onset : onset + talk.size] = talk
    # Start the caller at a syllable peak so the onset time is well defined.
    events, _ = run(prompt, caller + echo_of(prompt, echo_db, 60))
    assert len(events) == 1
    first_voiced = onset + int(np.argmax(np.abs(talk) > 500))
    assert events[0].at - first_voiced / RATE <= 0.100
    assert events[0].onset >= first_voiced / RATE - 0.02


def test_media_barge_in_forbidden_step_never_triggers_but_speech_is_seen() -> None:
    prompt = voice(3.0, 140, seed=5, level=12000)
    caller = echo_of(prompt, -20, 60)
    caller[8000:16000] += voice(1.0, 220, seed=6, level=9000)
    events, flags = run(prompt, caller, allowed=False)
    assert events == []
    assert sum(flags[50:100]) >= 15  # most of the ~28 frames of syllables in that second


def test_media_barge_in_fires_once_per_prompt_and_not_after_it() -> None:
    detector = BargeInDetector(BargeInConfig(min_speech_ms=40))
    loud = np.full(FRAME_SAMPLES, 8000, dtype=np.int16)
    assert detector.update(loud, True, 0.0) == (True, None)  # no prompt playing: no barge-in
    detector.prompt_started(True, 0.02)
    assert detector.prompt_playing
    results = [detector.update(loud, True, 0.02 * i) for i in range(2, 8)]
    fired = [r[1] for r in results if r[1]]
    assert len(fired) == 1
    assert fired[0].at == pytest.approx(0.08) and fired[0].onset == pytest.approx(0.04)
    detector.prompt_finished(0.2)
    assert not detector.prompt_playing
    assert all(detector.update(loud, True, 0.2 + 0.02 * i)[1] is None for i in range(5))


def test_media_barge_in_quiet_or_unvoiced_frames_do_not_count() -> None:
    detector = BargeInDetector()
    detector.prompt_started(True, 0.0)
    whisper = np.full(FRAME_SAMPLES, 20, dtype=np.int16)  # about -64 dBFS
    loud = np.full(FRAME_SAMPLES, 8000, dtype=np.int16)
    assert all(detector.update(whisper, True, 0.02 * i) == (False, None) for i in range(10))
    assert all(detector.update(loud, False, 0.2 + 0.02 * i) == (False, None) for i in range(10))


def test_media_barge_in_echo_gain_estimate_moves_only_above_the_assumption() -> None:
    prompt = voice(3.0, 140, seed=7, level=12000)
    detector = BargeInDetector()
    detector.prompt_started(True, 0.0)
    assert detector.echo_gain_db == pytest.approx(-12.0)
    caller = echo_of(prompt, -8.0, 100).astype(np.int16)
    for i, (p, c) in enumerate(zip(split_frames(prompt.astype(np.int16)), split_frames(caller), strict=True)):
        detector.prompt_frame(p)
        detector.update(c, True, i * 0.02)
    assert -10.0 < detector.echo_gain_db <= -7.5


def test_media_barge_in_config_and_input_errors() -> None:
    with pytest.raises(MediaError, match="min_speech_ms"):
        BargeInConfig(min_speech_ms=5)
    with pytest.raises(MediaError, match="max_echo_delay_ms"):
        BargeInConfig(max_echo_delay_ms=-1)
    with pytest.raises(MediaError, match="adapt_window_s"):
        BargeInConfig(adapt_window_s=0)
    with pytest.raises(MediaError, match="prompt frame must be 160 samples"):
        BargeInDetector().prompt_frame(np.zeros(10, dtype=np.int16))
