"""The emotion signal (supervision/emotion.py): cost per frame, and precision/recall on a
labelled set generated here.

Each simulated caller (seeded: voice, base pitch, rate and loudness) says one calm neutral
sentence (their baseline), then one test utterance of one of these classes:

- ``calm``: the same voice settings, a neutral sentence (label: calm);
- ``agitated``: pitch +18..35 (espeak-ng -p), rate +30..60 %, amplitude +60..120 % (label: agitated);
- ``agitated_neg``: the same with a negative sentence ("this is ridiculous, I am fed up");
- ``loud_calm``: amplitude +60..120 % only (a confuser; label: calm);
- ``fast_calm``: rate +30..60 % only (a confuser; label: calm);
- ``calm_neg``: calm voice, negative sentence (label: calm: the words alone are not arousal).

Every utterance goes through espeak-ng, a resample to 8 kHz, white noise at 25 dB SNR and a
G.711 µ-law round trip; its frames from the first to the last above -45 dBFS (what the
endpointer would pass) feed :class:`~supervision.emotion.EmotionTracker`. The lexicon is the
one of ``config/alerts.yaml``'s emotion rule; scores are reported with and without it.

Choose the threshold on one seed (``--seed 1``: prints the best-F1 threshold) and report
another (``--seed 2 --threshold T``): no tuning on the test half.

Run: .venv/bin/python bench/bench_emotion.py --seed 2 --callers 40 [--threshold 0.6]
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media import g711
from media.resample import resample
from supervision.alert_rules import load_rules
from supervision.alerts import AlertEngine
from supervision.emotion import EmotionReading, EmotionTracker, frame_features, with_words

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+f2", "en-us+m3", "en-029", "en-gb-scotland", "en-us-nyc+f4")
NEUTRAL = (
    "I would like to check the balance on my account please.",
    "Can you tell me when my next payment is due?",
    "I moved last month and need to update my address.",
    "My card number ends in four and I want to know the limit.",
    "Could you send the statement to my email address?",
    "I am calling about the letter you sent me last week.",
)
NEGATIVE = (
    "This is ridiculous, I have called three times and nobody helps.",
    "I am fed up with this useless service, it is terrible.",
    "I hate this, your system is stupid and I am angry.",
    "I am sick of waiting, this is a terrible way to treat people.",
)
CLASSES = ("calm", "agitated", "agitated_neg", "loud_calm", "fast_calm", "calm_neg")
AGITATED = {"agitated", "agitated_neg"}
ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Voice:
    voice: str
    pitch: int
    rate: int
    amplitude: int


@dataclass(frozen=True)
class Case:
    kind: str
    text: str
    reading: EmotionReading | None


def speak(text: str, v: Voice, rng: np.random.Generator) -> npt.NDArray[np.int16]:
    """espeak-ng -> 8 kHz -> noise at 25 dB SNR -> µ-law and back; trimmed to the speech."""
    out = subprocess.run(
        [
            "espeak-ng",
            "-v",
            v.voice,
            "-p",
            str(v.pitch),
            "-s",
            str(v.rate),
            "-a",
            str(v.amplitude),
            "--stdout",
            text,
        ],
        capture_output=True,
        check=True,
    ).stdout
    with wave.open(io.BytesIO(out)) as w:
        raw = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.int16)
        audio = resample(raw, w.getframerate()).astype(np.float64)
    power = float(np.mean(audio**2)) or 1.0
    audio += rng.normal(0.0, np.sqrt(power / 10 ** (25 / 10)), audio.size)
    line = g711.ulaw_decode(g711.ulaw_encode(np.clip(audio, -32768, 32767).astype(np.int16)))
    frames = [line[i : i + 160] for i in range(0, line.size - 159, 160)]
    loud = [i for i, f in enumerate(frames) if frame_features(f)[0] >= -45.0]
    return np.concatenate(frames[loud[0] : loud[-1] + 1]) if loud else line


def frames_of(samples: npt.NDArray[np.int16]) -> list[npt.NDArray[np.int16]]:
    return [samples[i : i + 160] for i in range(0, samples.size - 159, 160)]


def test_voice(kind: str, base: Voice, rng: np.random.Generator) -> Voice:
    pitch = base.pitch + int(rng.integers(18, 36)) if kind.startswith("agitated") else base.pitch
    faster = kind.startswith("agitated") or kind == "fast_calm"
    louder = kind.startswith("agitated") or kind == "loud_calm"
    rate = int(base.rate * rng.uniform(1.3, 1.6)) if faster else base.rate + int(rng.integers(-8, 9))
    amplitude = int(base.amplitude * rng.uniform(1.6, 2.2)) if louder else base.amplitude
    return Voice(base.voice, min(99, pitch), rate, min(200, amplitude))


def generate(seed: int, callers: int) -> list[Case]:
    rng = np.random.default_rng(seed)
    rules = load_rules(ROOT / "config" / "alerts.yaml")
    engine = AlertEngine(rules, "bench")
    cases: list[Case] = []
    for index in range(callers):
        base = Voice(
            VOICES[int(rng.integers(len(VOICES)))],
            int(rng.integers(30, 61)),
            int(rng.integers(140, 181)),
            int(rng.integers(50, 91)),
        )
        baseline = speak(NEUTRAL[int(rng.integers(len(NEUTRAL)))], base, rng)
        for kind in CLASSES:
            negative = kind.endswith("_neg")
            text = (NEGATIVE if negative else NEUTRAL)[
                int(rng.integers(len(NEGATIVE if negative else NEUTRAL)))
            ]
            tracker = EmotionTracker(baseline_utterances=1)
            for frame in frames_of(baseline):
                tracker.push(frame)
            tracker.end_utterance()
            for frame in frames_of(speak(text, test_voice(kind, base, rng), rng)):
                tracker.push(frame)
            reading = tracker.end_utterance()
            if reading is not None:
                reading = with_words(reading, len(engine.emotion_words(text)))
            cases.append(Case(kind, text, reading))
        print(f"\r  callers {index + 1}/{callers}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return cases


def score_of(case: Case, lexicon: bool) -> float:
    reading = case.reading
    if reading is None:
        return 0.0
    return reading.arousal if lexicon else reading.arousal - reading.parts.get("words", 0.0)


def figures(cases: list[Case], threshold: float, lexicon: bool) -> tuple[float, float, float]:
    tp = sum(1 for c in cases if c.kind in AGITATED and score_of(c, lexicon) >= threshold)
    fp = sum(1 for c in cases if c.kind not in AGITATED and score_of(c, lexicon) >= threshold)
    fn = sum(1 for c in cases if c.kind in AGITATED and score_of(c, lexicon) < threshold)
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def frame_cost_us(count: int = 20_000) -> float:
    rng = np.random.default_rng(0)
    t = np.arange(160 * (count + 1)) / 8000
    audio = (6000 * np.sin(2 * np.pi * 140 * t) + rng.normal(0, 300, t.size)).astype(np.int16)
    frames = frames_of(audio)
    start = time.perf_counter()
    for i in range(1, count + 1):
        frame_features(frames[i], frames[i - 1])
    return (time.perf_counter() - start) / count * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--callers", type=int, default=40)
    parser.add_argument(
        "--threshold", type=float, default=None, help="report at T (else: choose the best F1)"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    cost = frame_cost_us()
    started = time.perf_counter()
    cases = generate(args.seed, args.callers)
    print(
        f"seed {args.seed}: {len(cases)} utterances from {args.callers} callers in "
        f"{time.perf_counter() - started:.1f} s; load average {load:.1f} on {os.cpu_count()} cores"
    )
    print(f"frame_features: {cost:.1f} µs per 20 ms frame (voiced frames; silence is cheaper)")
    for kind in CLASSES:
        scores = [score_of(c, True) for c in cases if c.kind == kind]
        acoustic = [score_of(c, False) for c in cases if c.kind == kind]
        print(
            f"  {kind:<13} arousal median {np.median(scores):.2f} (acoustic {np.median(acoustic):.2f}), "
            f"p10 {np.percentile(scores, 10):.2f} p90 {np.percentile(scores, 90):.2f}"
        )
    for lexicon in (False, True):
        label = "voice + lexicon" if lexicon else "voice only"
        if args.threshold is None:
            best = max(np.arange(0.2, 0.95, 0.05), key=lambda t: figures(cases, float(t), lexicon)[2])
            p, r, f1 = figures(cases, float(best), lexicon)
            print(f"{label}: best threshold {best:.2f}: precision {p:.1%} recall {r:.1%} F1 {f1:.2f}")
        else:
            p, r, f1 = figures(cases, args.threshold, lexicon)
            print(f"{label} at {args.threshold:.2f}: precision {p:.1%} recall {r:.1%} F1 {f1:.2f}")
            for kind in CLASSES:
                of_kind = [c for c in cases if c.kind == kind]
                hits = sum(1 for c in of_kind if score_of(c, lexicon) >= args.threshold)
                print(f"    {kind:<13} alerted {hits}/{len(of_kind)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
