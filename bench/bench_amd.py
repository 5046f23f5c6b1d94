"""Answering-machine detection on a generated test set: accuracy, confusion, time to verdict.

Every case is drawn from a seeded generator (not hand-picked):
- human: 0.3-1.0 s of silence, a short espeak-ng answer ("Hello?", "Yes, speaking."), then
  silence while the person waits for the bot;
- machine: 0.1-0.8 s of silence, a greeting of several sentences (3-8 s), then half the time
  a beep (400-2000 Hz, 0.2-0.8 s) after a short pause, then silence.
Voices and speeds vary; a third of the cases are clean, a third have white noise at 20 dB
SNR and a third at 10 dB (relative to the speech), and everything goes through a G.711 µ-law
round trip as on a phone line. Machines also run in ``wait_for_beep`` mode to check when the
message would start.

    .venv/bin/python bench/bench_amd.py [--seed 2] [--count 60]

The defaults were tuned on ``--seed 1``; the figures in docs/benchmarks.md use ``--seed 2``.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from media.amd import AmdConfig, AmdVerdict, AnsweringMachineDetector, CueReason, Verdict
from media.audio_checks import decode_wav
from media.frames import SAMPLE_RATE, split_frames
from media.g711 import ulaw_decode, ulaw_encode

VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb+f2", "en-us+m3", "en-029", "en-gb-scotland", "en-us-nyc+f4")
HUMAN_PHRASES = ("Hello?", "Hello.", "Yes, speaking.", "Hi, yes?", "Yeah?", "Hello, yes?")
MACHINE_SENTENCES = (
    "Hi, you have reached the Miller family.",
    "You've reached Sarah at Northwind Insurance.",
    "Hello, this is David.",
    "Thank you for calling.",
    "We can't come to the phone right now.",
    "I'm away from my desk at the moment.",
    "Please leave your name, number and a short message after the tone.",
    "I will get back to you as soon as possible.",
    "The person you are calling is not available.",
    "Leave a message and have a great day.",
    "If this is urgent, please call my mobile instead.",
)
CACHE = Path(tempfile.gettempdir()) / "ivr-bench-amd-tts"


@dataclass(frozen=True)
class Case:
    kind: str  # "human" | "machine"
    noise: str  # "clean" | "20dB" | "10dB"
    audio: npt.NDArray[np.int16]
    speech_end_s: float  # end of the greeting / answer
    beep_end_s: float | None
    label: str


def speak(text: str, voice: str, speed: int) -> npt.NDArray[np.float64]:
    """espeak-ng at 8 kHz, trimmed of its own leading/trailing silence, cached on disk."""
    CACHE.mkdir(exist_ok=True)
    key = hashlib.sha1(f"{voice}|{speed}|{text}".encode()).hexdigest()[:16]
    path = CACHE / f"{key}.wav"
    if not path.exists():
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", str(path), text], check=True)
    samples = decode_wav(path.read_bytes(), str(path)).astype(np.float64)
    loud = np.flatnonzero(np.abs(samples) > 300)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples


def make_case(rng: np.random.Generator, kind: str, noise: str) -> Case:
    voice = VOICES[int(rng.integers(len(VOICES)))]
    speed = int(rng.integers(140, 201))
    parts: list[npt.NDArray[np.float64]] = []

    def silence(seconds: float) -> None:
        parts.append(np.zeros(round(seconds * SAMPLE_RATE)))

    beep_end = None
    if kind == "human":
        silence(rng.uniform(0.3, 1.0))
        phrase = HUMAN_PHRASES[int(rng.integers(len(HUMAN_PHRASES)))]
        parts.append(speak(phrase, voice, speed))
        speech_end = sum(p.size for p in parts) / SAMPLE_RATE
        silence(4.0)
    else:
        silence(rng.uniform(0.1, 0.8))
        order = rng.permutation(len(MACHINE_SENTENCES))
        greeting: list[npt.NDArray[np.float64]] = []
        length = 0.0
        target = rng.uniform(3.0, 8.0)
        for index in order:
            clip = speak(MACHINE_SENTENCES[int(index)], voice, speed)
            if length > 0 and length + clip.size / SAMPLE_RATE > 8.0:
                continue
            greeting += [clip, np.zeros(round(rng.uniform(0.2, 0.6) * SAMPLE_RATE))]
            length += sum(g.size for g in greeting[-2:]) / SAMPLE_RATE
            if length >= target:
                break
        parts.extend(greeting[:-1])
        speech_end = sum(p.size for p in parts) / SAMPLE_RATE
        if rng.random() < 0.5:
            silence(rng.uniform(0.2, 0.8))
            hz = rng.uniform(400, 2000)
            seconds = rng.uniform(0.2, 0.8)
            t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
            parts.append(8000 * np.sin(2 * np.pi * hz * t))
            beep_end = sum(p.size for p in parts) / SAMPLE_RATE
        silence(3.0)
    signal = np.concatenate(parts) * 10 ** (rng.uniform(-6, 0) / 20)
    if noise != "clean":
        voiced = signal[np.abs(signal) > 100]
        speech_rms = float(np.sqrt(np.mean(voiced**2)))
        snr = 20.0 if noise == "20dB" else 10.0
        signal = signal + rng.normal(0, speech_rms / 10 ** (snr / 20), signal.size)
    pcm = np.clip(np.rint(signal), -32768, 32767).astype(np.int16)
    label = f"{voice} {speed}wpm speech until {speech_end:.2f}s" + (f" {phrase!r}" if kind == "human" else "")
    return Case(kind, noise, ulaw_decode(ulaw_encode(pcm)), speech_end, beep_end, label)


def run(case: Case, config: AmdConfig) -> tuple[AmdVerdict, CueReason | None, float | None]:
    detector = AnsweringMachineDetector(config, answered_at=0.0)
    for index, frame in enumerate(split_frames(case.audio), start=1):
        detector.push_frame(frame, index * 0.02)
        if detector.done:
            break
    detector.poll(60.0)
    verdict = detector.verdict
    assert verdict is not None
    cue = detector.cue
    return verdict, cue.reason if cue else None, cue.after_s if cue else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--count", type=int, default=60, help="cases per class")
    parser.add_argument("--verbose", action="store_true", help="list every misclassified case")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override an AmdConfig setting (integers), e.g. --set greeting_ms=1200")
    args = parser.parse_args()
    overrides = {key: int(value) for key, _, value in (item.partition("=") for item in args.set)}
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    cases = [make_case(rng, kind, ("clean", "20dB", "10dB")[i % 3])
             for kind in ("human", "machine") for i in range(args.count)]
    generated = time.perf_counter() - started
    confusion: dict[tuple[str, Verdict], int] = {}
    by_noise: dict[str, list[bool]] = {}
    times: dict[str, list[float]] = {"human": [], "machine": []}
    cues = dict.fromkeys(("after beep", "over beep/greeting", "after greeting (no beep)", "none"), 0)
    audio_s = 0.0
    started = time.perf_counter()
    for case in cases:
        config = AmdConfig.from_config({**overrides, "wait_for_beep": case.kind == "machine"})
        result, _, cue_s = run(case, config)
        verdict, after_s = result.verdict, result.after_s
        if args.verbose and verdict.value != case.kind:
            print(f"  miss: {case.kind} {case.noise} {case.label} -> {verdict.value} {result.reason.value} "
                  f"at {after_s:.2f}s words={result.words} voice={result.voice_s:.2f}s")
        audio_s += after_s if cue_s is None else cue_s
        confusion[case.kind, verdict] = confusion.get((case.kind, verdict), 0) + 1
        by_noise.setdefault(case.noise, []).append(verdict.value == case.kind)
        times[case.kind].append(after_s)
        if case.kind == "machine" and verdict is Verdict.MACHINE:
            if cue_s is None:
                cues["none"] += 1
            elif cue_s + 1e-9 < (case.beep_end_s or case.speech_end_s):
                cues["over beep/greeting"] += 1
            else:
                cues["after beep" if case.beep_end_s else "after greeting (no beep)"] += 1
    elapsed = time.perf_counter() - started
    correct = sum(n for (kind, v), n in confusion.items() if v.value == kind)
    print(f"seed {args.seed}: {len(cases)} cases generated in {generated:.1f} s")
    print(f"accuracy: {correct}/{len(cases)} = {100 * correct / len(cases):.1f} %")
    print("confusion (rows: truth; cols: human / machine / notsure):")
    for kind in ("human", "machine"):
        row = [confusion.get((kind, v), 0) for v in (Verdict.HUMAN, Verdict.MACHINE, Verdict.NOTSURE)]
        print(f"  {kind:8s} {row[0]:4d} {row[1]:4d} {row[2]:4d}")
    for noise, hits in sorted(by_noise.items()):
        print(f"  {noise:6s} accuracy {100 * sum(hits) / len(hits):.1f} % ({sum(hits)}/{len(hits)})")
    for kind, values in times.items():
        p50, p95 = np.percentile(values, [50, 95])
        print(f"time to verdict, {kind}: p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(values):.2f} s")
    print("message start on detected machines:", ", ".join(f"{k}: {v}" for k, v in cues.items()))
    print(f"analysis speed: {audio_s:.0f} s of audio in {elapsed:.2f} s = {audio_s / elapsed:.0f}x real time")


if __name__ == "__main__":
    main()
