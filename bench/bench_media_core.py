"""Cost of the per-frame media building blocks; prints a Markdown table.

Run: .venv/bin/python bench/bench_media_core.py [--seconds-per-case 1.0] [--baseline DIR]

Every frame is 20 ms of audio, so a step costing C µs per frame uses C / 20000 of a core
per call; the last column says how many calls one core could carry on that step alone.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# --baseline runs this file again with MEDIA_BENCH_ROOT set: it then times that checkout's media code.
sys.path.insert(0, os.environ.get("MEDIA_BENCH_ROOT") or str(Path(__file__).resolve().parent.parent))

from config.settings import MediaSettings
from media import g711
from media.asr.base import Expectation
from media.audio_checks import decode_wav
from media.barge_in import BargeIn, BargeInDetector
from media.dtmf_detector import DtmfDetector
from media.endpointer import Endpointer, SpeechEnded
from media.frames import FRAME_SAMPLES, Frame, split_frames
from media.pipeline import CallMediaPipeline
from media.resample import resample
from media.vad import EnergyVad, WebRtcVad

FRAME_US = 20_000.0
_ROOT_ENV = "MEDIA_BENCH_ROOT"


def speechlike(seconds: float, seed: int = 1) -> np.ndarray:
    """Syllabic harmonic buzz with pauses and line noise: exercises every branch."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 8000)) / 8000
    phase = 2 * np.pi * np.cumsum(130 * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))) / 8000
    buzz = sum(np.sin(k * phase) * np.exp(-k / 6) for k in range(1, 25))
    envelope = np.clip(np.sin(2 * np.pi * 0.5 * t), 0, None) * np.clip(np.sin(2 * np.pi * 4 * t), 0, None)
    audio = 8000 * buzz / np.max(np.abs(buzz)) * envelope + rng.standard_normal(t.size) * 30
    out: np.ndarray = np.clip(audio, -32768, 32767).astype(np.int16)
    return out


def per_frame_us(step: Callable[[Frame, float], object], frames: list[Frame], budget_s: float) -> float:
    """Mean µs per call of ``step`` over repeated passes through ``frames``."""
    calls = 0
    start = time.perf_counter()
    now = 0.0
    while True:
        for frame in frames:
            step(frame, now)
            now += 0.02
        calls += len(frames)
        elapsed = time.perf_counter() - start
        if elapsed >= budget_s:
            return elapsed / calls * 1e6


def throughput(fn: Callable[[], object], samples: int, budget_s: float) -> float:
    """Millions of samples per second."""
    runs = 0
    start = time.perf_counter()
    while time.perf_counter() - start < budget_s:
        fn()
        runs += 1
    return runs * samples / (time.perf_counter() - start) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds-per-case", type=float, default=1.0)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (e.g. `git archive HEAD | tar -x -C DIR`): time its frame-by-frame loop too",
    )
    parser.add_argument("--tick-loop", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    budget = args.seconds_per_case
    audio = speechlike(10.0)
    frames = split_frames(audio)
    settings = MediaSettings()
    sent = split_frames(speechlike(10.0, seed=2))
    if args.tick_loop:  # a baseline run: frame by frame only, the one API every version has
        best = min(tick_loop_us(settings, frames, sent, 1, batched=False, budget_s=budget) for _ in range(2))
        print(f"{best:.2f}")
        return

    rows: list[tuple[str, float]] = []
    webrtc = WebRtcVad(settings.vad_aggressiveness)
    vad_us = per_frame_us(lambda f, n: webrtc.is_speech(f), frames, budget)
    rows.append((f"VAD: webrtcvad (aggressiveness {settings.vad_aggressiveness})", vad_us))
    energy = EnergyVad()
    rows.append(("VAD: energy", per_frame_us(lambda f, n: energy.is_speech(f), frames, budget)))
    flags = [webrtc.is_speech(f) for f in frames]
    endpointer = Endpointer()
    index = {id(f): i for i, f in enumerate(frames)}
    rows.append(
        (
            "Endpointer state machine (decision given)",
            per_frame_us(lambda f, n: endpointer.process(flags[index[id(f)]], n), frames, budget),
        )
    )
    dtmf = DtmfDetector()
    dtmf_us = per_frame_us(dtmf.push_frame, frames, budget)
    rows.append(("DTMF detector (8 single-bin DFTs x 4 windows)", dtmf_us))
    barge = BargeInDetector()
    barge.prompt_started(True, 0.0)

    def barge_step(frame: Frame, now: float) -> object:
        barge.prompt_frame(frame)
        return barge.update(frame, True, now)

    rows.append(("Barge-in echo guard (prompt + caller frame)", per_frame_us(barge_step, frames, budget)))
    pipeline = CallMediaPipeline(settings)
    pipeline.start_listening(Expectation(), 1e9, 0.0)

    def pipeline_step(frame: Frame, now: float) -> object:
        events = pipeline.push_caller_frame(frame, now)
        pipeline.take_asr_work()
        return events

    pipeline_us = per_frame_us(pipeline_step, frames, budget)
    rows.append(("CallMediaPipeline.push_caller_frame (all of the above)", pipeline_us))

    print("| per 20 ms frame | µs/frame | calls per core |")
    print("| --- | ---: | ---: |")
    for name, us in rows:
        print(f"| {name} | {us:.1f} | {FRAME_US / us:,.0f} |")
    batches(settings, frames, sent, budget, args.baseline)

    second = audio[:8000]
    ulaw = g711.ulaw_encode(second)
    alaw = g711.alaw_encode(second)
    frame = audio[:FRAME_SAMPLES]
    frame_ulaw = g711.ulaw_encode(frame)
    speech_22k = resample(audio[:16000], 8000, 22050)
    codec_rows = [
        ("µ-law encode, 1 s buffers", throughput(lambda: g711.ulaw_encode(second), 8000, budget)),
        ("µ-law decode, 1 s buffers", throughput(lambda: g711.ulaw_decode(ulaw), 8000, budget)),
        ("A-law encode, 1 s buffers", throughput(lambda: g711.alaw_encode(second), 8000, budget)),
        ("A-law decode, 1 s buffers", throughput(lambda: g711.alaw_decode(alaw), 8000, budget)),
        ("µ-law encode, one 20 ms frame per call", throughput(lambda: g711.ulaw_encode(frame), 160, budget)),
        (
            "µ-law decode, one 20 ms frame per call",
            throughput(lambda: g711.ulaw_decode(frame_ulaw), 160, budget),
        ),
        (
            "resample 22.05 kHz -> 8 kHz (input samples)",
            throughput(lambda: resample(speech_22k, 22050, 8000), speech_22k.size, budget),
        ),
    ]
    print()
    print("| codec / converter | Msamples/s | x real time |")
    print("| --- | ---: | ---: |")
    for name, msps in codec_rows:
        rate = 22050 if "22.05" in name else 8000
        print(f"| {name} | {msps:.1f} | {msps * 1e6 / rate:,.0f} |")
    latencies(settings)


def tick_loop_us(
    settings: MediaSettings,
    frames: list[Frame],
    sent: list[Frame],
    size: int,
    *,
    batched: bool,
    budget_s: float,
) -> float:
    """CPU µs per tick of a pipeline fed ``size`` ticks per drain (each tick: the bot's frame, then
    the caller's): push_caller_frames per drain, or prompt_frame + push_caller_frame per tick."""
    pipeline = CallMediaPipeline(settings)
    pipeline.prompt_started(True, 0.0)
    pipeline.start_listening(Expectation(), 1e9, 0.0)
    n = len(frames) // size * size
    groups = [[p] for p in sent]
    ticks = 0
    start = time.process_time()
    while time.process_time() - start < budget_s:
        for at in range(0, n, size):
            starts = [(ticks + k) * 0.02 for k in range(size)]
            if batched:
                pipeline.push_caller_frames(frames[at : at + size], starts, groups[at : at + size])
            else:
                for k in range(size):
                    pipeline.prompt_frame(sent[at + k])
                    pipeline.push_caller_frame(frames[at + k], starts[k])
            pipeline.take_asr_work()
            ticks += size
    return (time.process_time() - start) / ticks * 1e6


def baseline_us(root: Path, budget_s: float) -> float:
    """The frame-by-frame tick loop run against another checkout's media code (``root``)."""
    env = {**os.environ, _ROOT_ENV: str(root)}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--tick-loop", "--seconds-per-case", str(budget_s)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return float(out.strip().splitlines()[-1])


def batches(
    settings: MediaSettings, frames: list[Frame], sent: list[Frame], budget_s: float, baseline: Path | None
) -> None:
    """Frame by frame against push_caller_frames, timed alternately (3 rounds, best kept) in one
    run over the same audio, in process CPU time: the machine is shared, and a wall clock would
    count other work. With a baseline checkout, its frame-by-frame loop joins each round."""
    print()
    print(
        "| frames per drain (prompt + caller frame per tick) | frame by frame µs/frame "
        "| push_caller_frames µs/frame | ratio |"
    )
    print("| ---: | ---: | ---: | ---: |")
    before: list[float] = []
    for size in (1, 2, 5, 50):
        rounds = []
        for _ in range(3):
            if baseline is not None and size == 1:
                before.append(baseline_us(baseline, budget_s))
            single = tick_loop_us(settings, frames, sent, size, batched=False, budget_s=budget_s)
            rounds.append(
                (single, tick_loop_us(settings, frames, sent, size, batched=True, budget_s=budget_s))
            )
        single = min(r[0] for r in rounds)
        batch = min(r[1] for r in rounds)
        print(f"| {size} | {single:.1f} | {batch:.1f} | {single / batch:.2f}x |")
    if before:
        print(f"\nFrame by frame with the media code of {baseline}: {min(before):.1f} µs/frame (best of 3)")


PHRASES = ("agent please", "check my balance", "I want to pay my bill", "yes", "talk to a person")
VOICES = (("en-us", 160), ("en+f3", 190), ("en-gb", 140), ("en+m7", 175))


def _espeak(text: str, voice: str, speed: int) -> np.ndarray:
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(speed), "--stdout", text], capture_output=True, check=True
    ).stdout
    return g711.ulaw_decode(g711.ulaw_encode(decode_wav(out, "espeak-ng")))


def _bounds(samples: np.ndarray) -> tuple[float, float]:
    blocks = samples[: samples.size // 80 * 80].reshape(-1, 80).astype(np.float64)
    level = 10 * np.log10(np.mean(blocks**2, axis=1) + 1.0)
    active = np.flatnonzero(level > level.max() - 35)
    return active[0] * 0.01, (active[-1] + 1) * 0.01


def latencies(settings: MediaSettings) -> None:
    """Barge-in and end-of-speech timing on espeak-ng speech over µ-law, prompt echo at -20 dB."""
    if shutil.which("espeak-ng") is None:
        print("\n(espeak-ng not installed: latency figures skipped)")
        return
    welcome = "Welcome to the hotline. Please tell me briefly what you are calling about."
    prompt = _espeak(welcome, "en+m3", 165)
    barge_ms: list[float] = []
    eos_ms: list[float] = []
    for text in PHRASES:
        for voice, speed in VOICES:
            talk = _espeak(text, voice, speed).astype(np.float64)
            onset, last = _bounds(talk)
            start = 12000  # the caller starts 1.5 s into the prompt
            near = np.zeros(prompt.size + 40000)
            near[start : start + talk.size] += talk
            near += np.random.default_rng(2).standard_normal(near.size) * 20
            pipeline = CallMediaPipeline(settings)
            pipeline.prompt_started(True, 0.0)
            pipeline.start_listening(Expectation(), 10.0, 0.0)
            played: list[np.ndarray] = []  # what the bot actually sent; its echo comes back 60 ms later
            for i, near_frame in enumerate(split_frames(near.astype(np.int16))):
                playing = pipeline.barge_in.prompt_playing and (i + 1) * FRAME_SAMPLES <= prompt.size
                out_frame = (
                    prompt[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
                    if playing
                    else np.zeros(FRAME_SAMPLES, dtype=np.int16)
                )
                if playing:
                    pipeline.prompt_frame(out_frame)
                played.append(out_frame)
                echo = played[i - 3].astype(np.float64) * 0.1 if i >= 3 else 0.0
                heard = np.clip(near_frame + echo, -32768, 32767).astype(np.int16)
                for event in pipeline.push_caller_frame(heard, i * 0.02):
                    if isinstance(event, BargeIn):
                        barge_ms.append((event.at - (1.5 + onset)) * 1000)
                        pipeline.prompt_finished(event.at)
                    elif isinstance(event, SpeechEnded):
                        eos_ms.append((i * 0.02 + 0.02 - (1.5 + last)) * 1000)
                pipeline.take_asr_work()
    print()
    count = len(PHRASES) * len(VOICES)
    print(f"| timing on espeak-ng speech ({count} utterances) | p50 ms | p95 ms | max ms |")
    print("| --- | ---: | ---: | ---: |")
    for name, values in (
        ("barge-in: speech onset -> BargeIn", barge_ms),
        ("end of speech -> SpeechEnded emitted", eos_ms),
    ):
        arr = np.array(values)
        print(
            f"| {name} (n={arr.size}) | {np.percentile(arr, 50):.0f} | {np.percentile(arr, 95):.0f} "
            f"| {arr.max():.0f} |"
        )


if __name__ == "__main__":
    main()
