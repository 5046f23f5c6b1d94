"""Smarter end of turn: how soon a complete phrase ends the turn, and how often a turn is cut.

Every grammar utterance of the evaluation set (``bench/eval_set.py``: menu, yes/no, digits and
out-of-grammar sentences, 5 voices, 2 rates, 20/10 dB) goes frame by frame through the live
:class:`~media.pipeline.CallMediaPipeline` with the real recognizer, once per first-check pause
(``media.end_silence_complete_ms``) and decode-ahead point (``media.end_silence_prepare_ms``;
300 or more: none). Per setting it prints: the intent accuracy, the false-cut
rate (the turn ended more than 100 ms before the speech did, the speech's end being where the
same VAD ends it after 1 s of silence), and the delay from that end of speech to the final
result on the audio clock, p50/p95.

Run: .venv/bin/python bench/bench_end_of_turn.py [--data DIR] [--pauses 150,300] [--prepare 200,300]
[--limit N]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_set import build, read_wav
from config.settings import MediaSettings
from media.asr.base import AsrEngine, Expectation
from media.endpointer import SpeechEnded
from media.frames import split_frames
from media.pipeline import AsrFeeder, AsrFinal, CallMediaPipeline

TAIL_S = 1.5  # more silence after each file than the longest hold


def turn(
    engine: AsrEngine, settings: MediaSettings, audio: np.ndarray, phrases: tuple[str, ...]
) -> tuple[AsrFinal, float] | None:
    """The first final of the utterance and the audio time it arrived at."""
    expectation = Expectation(phrases, open_vocabulary=False)
    pipeline = CallMediaPipeline(settings)
    feeder = AsrFeeder(engine.open_stream(expectation))
    pipeline.start_listening(expectation, 10.0, now=0.0)
    for i, frame in enumerate(split_frames(audio)):
        pipeline.push_caller_frame(frame, i * 0.02)
        for result in feeder.run(pipeline.take_asr_work()):
            if isinstance(result, AsrFinal):
                return result, (i + 1) * 0.02
    return None


def speech_end(audio: np.ndarray) -> float | None:
    """Where the caller really stops: the same VAD and echo guard, ended only by 1 s of silence."""
    pipeline = CallMediaPipeline(MediaSettings(end_silence_ms=1000, end_silence_incomplete_ms=1000))
    ends = [
        e.at
        for i, frame in enumerate(split_frames(audio))
        for e in pipeline.push_caller_frame(frame, i * 0.02)
        if isinstance(e, SpeechEnded)
    ]
    return ends[-1] if ends else None


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/eval"))
    parser.add_argument("--pauses", default="150,300", help="end_silence_complete_ms values to compare")
    parser.add_argument(
        "--prepare", default="200,300", help="end_silence_prepare_ms values (300: no decode ahead)"
    )
    parser.add_argument("--limit", type=int, default=0, help="use every n-th utterance only (0: all)")
    args = parser.parse_args()
    from media.asr.pocketsphinx_engine import PocketsphinxEngine

    engine = PocketsphinxEngine()
    items = [u for u in build(args.data, "en") if u.step != "open"]
    if args.limit:
        items = items[:: max(1, len(items) // args.limit)]
    rng = np.random.default_rng(3)
    print(
        "| first check ms | decode ahead at ms | n | intent right | false cuts "
        "| speech end -> final p50 ms | p95 ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    combos = [(int(p), int(a)) for p in args.pauses.split(",") for a in args.prepare.split(",")]
    for pause, ahead in combos:
        settings = MediaSettings(end_silence_complete_ms=pause, end_silence_prepare_ms=ahead)
        ahead_cell = str(ahead) if ahead < min(pause, settings.end_silence_ms) else "none"
        right = cuts = 0
        delays: list[float] = []
        for u in items:
            tail = np.clip(rng.normal(0.0, 20.0, int(TAIL_S * 8000)), -32768, 32767).astype(np.int16)
            audio = np.concatenate([read_wav(u.path), tail])
            end = speech_end(audio)
            got = turn(engine, settings, audio, u.phrases)
            if got is None or end is None:
                right += u.expected is None
                continue
            final, arrived = got
            heard = final.result.text if final.result.in_grammar else None
            right += heard == u.expected
            cuts += final.speech_ended_at < end - 0.1
            delays.append(arrived - end)
        n = len(items)
        print(
            f"| {pause} | {ahead_cell} | {n} | {100 * right / n:.1f} % | {100 * cuts / n:.1f} % ({cuts}) | "
            f"{1000 * pct(delays, 0.5):.0f} | {1000 * pct(delays, 0.95):.0f} |"
        )
    print(f"load average {os.getloadavg()[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
