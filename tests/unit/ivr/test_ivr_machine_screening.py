"""Screening ends at the verdict for a person, or at the beep when a message is to be left."""

from __future__ import annotations

import numpy as np

from ivr.machine_screening import MachineScreening, Screener
from media.amd import AmdConfig, Verdict
from media.frames import FRAME_SAMPLES, SILENCE


def run(screener: Screener, frames: list[np.ndarray]) -> list[Verdict]:
    seen: list[Verdict] = []
    for n, frame in enumerate(frames):
        screener.push_frame(frame, n * 0.02)
        seen += [v.verdict for v in screener.poll((n + 1) * 0.02)]
        if screener.done:
            break
    return seen


def test_silence_gets_one_verdict_and_ends_screening() -> None:
    screener = Screener(MachineScreening(AmdConfig()))
    verdicts = run(screener, [SILENCE] * 500)  # 10 s
    assert screener.done and len(verdicts) == 1 and screener.verdict is verdicts[0]


def test_with_a_message_a_machine_verdict_waits_for_the_beep() -> None:
    t = np.arange(FRAME_SAMPLES) / 8000
    rng = np.random.default_rng(3)
    # A long "greeting" (noise bursts like words), then a 1 kHz beep, then silence.
    words = [(rng.normal(0, 3000, FRAME_SAMPLES) * (n % 25 < 18)).astype(np.int16) for n in range(400)]
    beep = [(8000 * np.sin(2 * np.pi * 1000 * (t + n * 0.02))).astype(np.int16) for n in range(30)]
    screener = Screener(MachineScreening(AmdConfig(), message="Please call us back."))
    verdicts = run(screener, words + beep + [SILENCE] * 200)
    assert Verdict.MACHINE in verdicts
    assert screener.done and screener.verdict is Verdict.MACHINE
