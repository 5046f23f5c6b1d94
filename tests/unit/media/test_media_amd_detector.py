"""AMD decisions on generated audio, with time stepped frame by frame.

Rule tests use a plain energy scorer so timings are exact; the ``synthetic`` tests run the
default webrtcvad scorer on generated voiced syllables, with line noise.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from config.errors import MediaError
from media.amd import (
    AmdConfig,
    AmdEvent,
    AmdReason,
    AmdVerdict,
    AnsweringMachineDetector,
    CueReason,
    MessageCue,
    ToneTracker,
    Verdict,
)
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame, split_frames

Audio = npt.NDArray[np.float64]


def energy_scorer(frame: Frame) -> bool:
    return float(np.sqrt(np.mean(frame.astype(np.float64) ** 2))) > 300.0


def silence(seconds: float) -> Audio:
    return np.zeros(round(seconds * SAMPLE_RATE))


def syllable(seconds: float, f0: float = 140.0, formants: tuple[float, ...] = (700, 1200, 2600)) -> Audio:
    """A voiced vowel: harmonics of ``f0`` with slight vibrato, shaped by formant peaks."""
    n = round(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    phase = np.cumsum(2 * np.pi * f0 * (1 + 0.05 * np.sin(2 * np.pi * 3 * t)) / SAMPLE_RATE)
    source = sum(np.sin(k * phase) / k for k in range(1, int(3800 / f0)))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    gain = sum(1 / (1 + ((freqs - f) / 200) ** 2) for f in formants)
    shaped = np.fft.irfft(np.fft.rfft(source) * gain, n)
    shaped *= np.sin(np.pi * np.arange(n) / n) ** 0.5
    return np.asarray(shaped / np.abs(shaped).max() * 8000.0)


def words(count: int, rng: np.random.Generator) -> Audio:
    """``count`` two-syllable words with short pauses, like a recorded greeting."""
    parts: list[Audio] = []
    for _ in range(count):
        parts += [syllable(rng.uniform(0.12, 0.2), rng.uniform(110, 220)),
                  syllable(rng.uniform(0.12, 0.2), rng.uniform(110, 220), (400, 2000, 2800)),
                  silence(rng.uniform(0.1, 0.25))]
    return np.concatenate(parts)


def tone(seconds: float, hz: float, amplitude: float = 8000.0) -> Audio:
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return np.asarray(amplitude * np.sin(2 * np.pi * hz * t))


def line(*parts: Audio, snr_db: float | None = None, seed: int = 0) -> list[Frame]:
    signal = np.concatenate(parts)
    if snr_db is not None:
        voiced = signal[np.abs(signal) > 100]
        rms = float(np.sqrt(np.mean(voiced**2)))
        signal = signal + np.random.default_rng(seed).normal(0, rms / 10 ** (snr_db / 20), signal.size)
    return split_frames(np.clip(np.rint(signal), -32768, 32767).astype(np.int16))


def feed(detector: AnsweringMachineDetector, frames: list[Frame], start: float = 0.0) -> list[AmdEvent]:
    events: list[AmdEvent] = []
    for index, frame in enumerate(frames, start=1):
        events += detector.push_frame(frame, start + index * 0.02)
        if detector.done:
            break
    return events


def verdict_of(events: list[AmdEvent]) -> AmdVerdict:
    found = [e for e in events if isinstance(e, AmdVerdict)]
    assert len(found) == 1, events
    return found[0]


def rules_detector(**config: int | bool) -> AnsweringMachineDetector:
    return AnsweringMachineDetector(AmdConfig.from_config(config), scorer=energy_scorer)


def test_short_hello_then_silence_is_human_after_the_pause() -> None:
    frames = line(silence(0.5), syllable(0.2), syllable(0.2), silence(3.0))
    result = verdict_of(feed(rules_detector(), frames))
    assert (result.verdict, result.reason) == (Verdict.HUMAN, AmdReason.HUMAN_GREETING)
    assert result.after_s == pytest.approx(0.9 + 0.8, abs=0.03)
    assert result.words == 1  # the two syllables touch: one word


def test_long_initial_silence_is_machine() -> None:
    result = verdict_of(feed(rules_detector(), line(silence(4.0))))
    assert (result.verdict, result.reason) == (Verdict.MACHINE, AmdReason.INITIAL_SILENCE)
    assert result.after_s == 2.5


def test_three_words_is_machine() -> None:
    word = np.concatenate([syllable(0.15), silence(0.1)])
    frames = line(silence(0.2), word, word, word, word, silence(2))
    result = verdict_of(feed(rules_detector(), frames))
    assert (result.verdict, result.reason, result.words) == (Verdict.MACHINE, AmdReason.MAX_WORDS, 3)
    assert result.after_s == pytest.approx(0.2 + 2 * 0.25 + 0.1, abs=0.03)


def test_long_continuous_greeting_is_machine() -> None:
    result = verdict_of(feed(rules_detector(max_words=99), line(silence(0.3), syllable(2.0), silence(2))))
    assert (result.verdict, result.reason) == (Verdict.MACHINE, AmdReason.LONG_GREETING)
    assert result.after_s == pytest.approx(0.3 + 1.5, abs=0.05)


def test_deadline_decides_on_what_was_heard() -> None:
    # Speech ends at 2.1 s: only 0.4 s of pause by the 2.5 s deadline, but enough.
    human = line(silence(0.8), syllable(0.3), silence(0.2), syllable(0.3), silence(0.3), syllable(0.2),
                 silence(1))
    result = verdict_of(feed(rules_detector(max_words=9), human))
    assert (result.verdict, result.reason) == (Verdict.HUMAN, AmdReason.HUMAN_GREETING)
    assert result.after_s == 2.5
    still_talking = line(silence(1.2), syllable(0.6), silence(0.1), syllable(0.6), silence(0.1),
                         syllable(1.0))
    result = verdict_of(feed(rules_detector(max_words=9), still_talking))
    assert (result.verdict, result.reason) == (Verdict.MACHINE, AmdReason.LONG_GREETING)
    unsure = line(silence(2.2), syllable(0.6))
    result = verdict_of(feed(rules_detector(), unsure))
    assert (result.verdict, result.reason, result.after_s) == (Verdict.NOTSURE, AmdReason.TOO_LONG, 2.5)


def test_missing_audio_counts_as_silence() -> None:
    detector = rules_detector()
    assert detector.push_frame(line(silence(0.02))[0], 0.02) == []
    assert detector.poll(1.0) == []
    events = detector.poll(3.0)
    result = verdict_of(events)
    assert result.reason is AmdReason.INITIAL_SILENCE
    assert detector.done
    assert detector.poll(10.0) == []


def test_beep_during_analysis_is_machine() -> None:
    frames = line(silence(0.3), tone(0.5, 1000.0), silence(2))
    result = verdict_of(feed(rules_detector(), frames))
    assert (result.verdict, result.reason) == (Verdict.MACHINE, AmdReason.BEEP)
    assert result.after_s == pytest.approx(0.4, abs=0.03)


def test_wait_for_beep_cues_when_the_beep_ends() -> None:
    rng = np.random.default_rng(3)
    frames = line(silence(0.2), words(6, rng), silence(0.5), tone(0.4, 850.0), silence(3))
    beep_end = (len(frames) * FRAME_SAMPLES - 3 * SAMPLE_RATE) / SAMPLE_RATE
    detector = rules_detector(wait_for_beep=True)
    events = feed(detector, frames)
    assert verdict_of(events).verdict is Verdict.MACHINE
    cues = [e for e in events if isinstance(e, MessageCue)]
    assert len(cues) == 1
    assert cues[0].reason is CueReason.BEEP
    assert beep_end <= cues[0].after_s <= beep_end + 0.06
    assert detector.done


def test_wait_for_beep_without_beep_cues_after_silence_or_timeout() -> None:
    rng = np.random.default_rng(4)
    greeting = words(8, rng)
    detector = rules_detector(wait_for_beep=True)
    cue = [e for e in feed(detector, line(silence(0.2), greeting, silence(4))) if isinstance(e, MessageCue)]
    assert cue[0].reason is CueReason.SILENCE
    assert cue[0].after_s == pytest.approx(0.2 + greeting.size / SAMPLE_RATE + 1.5, abs=0.3)
    endless = rules_detector(wait_for_beep=True, max_message_wait_ms=6000)
    cue = [e for e in feed(endless, line(silence(0.2), words(40, rng))) if isinstance(e, MessageCue)]
    assert (cue[0].reason, cue[0].after_s) == (CueReason.TIMEOUT, 6.0)


def test_human_is_done_at_once_even_in_wait_for_beep_mode() -> None:
    detector = rules_detector(wait_for_beep=True)
    feed(detector, line(silence(0.5), syllable(0.3), silence(3)))
    assert detector.verdict is not None
    assert detector.verdict.verdict is Verdict.HUMAN
    assert detector.done
    assert detector.cue is None


@pytest.mark.parametrize("snr_db", [None, 20.0, 10.0])
def test_synthetic_hello_is_human_with_default_scorer(snr_db: float | None) -> None:
    hello = line(silence(0.6), syllable(0.15, 180), syllable(0.25, 170, (400, 2000, 2800)), silence(3),
                 snr_db=snr_db)
    result = verdict_of(feed(AnsweringMachineDetector(), hello))
    assert result.verdict is Verdict.HUMAN
    assert result.after_s <= 2.5


@pytest.mark.parametrize("snr_db", [None, 20.0, 10.0])
def test_synthetic_greeting_is_machine_with_default_scorer(snr_db: float | None) -> None:
    greeting = line(silence(0.3), words(10, np.random.default_rng(7)), silence(2), snr_db=snr_db)
    result = verdict_of(feed(AnsweringMachineDetector(), greeting))
    assert result.verdict is Verdict.MACHINE
    assert result.after_s <= 2.5


def test_tone_tracker_finds_tones_not_vowels_or_noise() -> None:
    def longest_tone(audio: Audio) -> int:
        tracker = ToneTracker(300, 2500)
        longest = 0
        for frame in line(audio):
            tracker.push(frame, loud=True)
            longest = max(longest, tracker.run_ms)
        return longest

    assert longest_tone(tone(0.3, 1400.0)) >= 280
    assert longest_tone(tone(0.3, 440.0, 2000.0)) >= 280
    assert longest_tone(tone(0.3, 3500.0)) == 0  # outside the band
    rng = np.random.default_rng(1)
    assert longest_tone(words(6, rng)) < 100
    assert longest_tone(rng.normal(0, 3000, SAMPLE_RATE)) < 100


def test_bad_frames_and_config_are_rejected() -> None:
    with pytest.raises(MediaError, match="AMD expects 160 int16 samples per frame"):
        AnsweringMachineDetector().push_frame(np.zeros(80, dtype=np.int16), 0.02)
    with pytest.raises(MediaError, match=r"amd\.greting_ms: unknown AMD setting"):
        AmdConfig.from_config({"greting_ms": 1500})
    with pytest.raises(MediaError, match=r"amd\.greeting_ms: expected a whole number"):
        AmdConfig.from_config({"greeting_ms": "1.5s"})
    with pytest.raises(MediaError, match=r"amd\.wait_for_beep: expected true or false"):
        AmdConfig.from_config({"wait_for_beep": "yes"})
    with pytest.raises(MediaError, match=r"campaign\.amd: amd\.max_words: 0 must be at least 1"):
        AmdConfig.from_config({"max_words": 0}, "campaign.amd")
    with pytest.raises(MediaError, match=r"beep_low_hz\.\.beep_high_hz"):
        AmdConfig(beep_low_hz=3000, beep_high_hz=2000)
