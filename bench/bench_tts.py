"""TTS time to first frame: uncached (synthesis), cached on disk (a new process), cached in memory.

Run: .venv/bin/python bench/bench_tts.py [--repeat 10]

A prompt is played from its first 20 ms frame, so time to first frame is the time ``render``
takes: the whole prompt is rendered before playback starts.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.tts import TextToSpeech

SENTENCE = "Thank you for calling {n}. Your balance is {n} dollars. Say agent to speak with a person now."


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{1000 * statistics.median(ordered):.2f} | {1000 * ordered[int(0.95 * (len(ordered) - 1))]:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ivr-bench-tts-") as tmp:
        tts = TextToSpeech(Path(tmp))
        tts.render("Warm up.")  # the first call loads espeak-ng's data
        cold: list[float] = []
        texts = [SENTENCE.format(n=1000 + i) for i in range(args.repeat)]  # 15 words, all distinct
        for text in texts:
            t0 = time.perf_counter()
            tts.render(text)
            cold.append(time.perf_counter() - t0)
        memory: list[float] = []
        for text in texts:
            t0 = time.perf_counter()
            tts.render(text)
            memory.append(time.perf_counter() - t0)
        disk: list[float] = []
        fresh = TextToSpeech(Path(tmp))  # what a second process sees: files, no memory copies
        for text in texts:
            t0 = time.perf_counter()
            fresh.render(text)
            disk.append(time.perf_counter() - t0)
    print("| case | p50 ms | p95 ms |")
    print("| --- | --- | --- |")
    print(f"| uncached, 15-word sentence | {ms(cold)} |")
    print(f"| cached on disk (new process) | {ms(disk)} |")
    print(f"| cached in memory | {ms(memory)} |")


if __name__ == "__main__":
    main()
