"""TTS time to first audio: uncached (synthesis), templated (fixed piece cached), cached, and
under concurrent load; long-lived synthesis workers against a fresh process per prompt.

Run: .venv/bin/python bench/bench_tts.py [--repeat 10]

A prompt plays from its first piece (:mod:`media.speech_chunks`), so time to first audio is
the time the first piece takes to render: a template's fixed first piece ("Thank you for
calling.") comes from the cache, and only the piece carrying the value is synthesized while
the first one plays.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.speech_chunks import fixed_chunks, speech_chunks
from media.tts import TextToSpeech

TEMPLATE = "Thank you for calling. Your balance is {n} dollars. Say agent to speak with a person now."
SENTENCE = "Your balance is {n} dollars and {n} cents, and your next payment is due on the first."


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    return f"{1000 * statistics.median(ordered):.2f} | {1000 * ordered[int(0.95 * (len(ordered) - 1))]:.2f}"


def timed(texts: list[str], render: Callable[[str], object]) -> list[float]:
    out: list[float] = []
    for text in texts:
        t0 = time.perf_counter()
        render(text)
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    n = args.repeat
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="ivr-bench-tts-") as tmp:
        tts = TextToSpeech(Path(tmp) / "cache", workers=2)
        tts.prerender(fixed_chunks(TEMPLATE.replace("{n}", "{{ n }}")))
        tts.render("Warm up.")
        sentences = [SENTENCE.format(n=1000 + i) for i in range(n)]  # 18 words, all distinct
        rows.append(("uncached 18-word sentence, long-lived worker", timed(sentences, tts.render)))
        first = [speech_chunks(TEMPLATE.format(n=2000 + i))[0] for i in range(n)]
        rows.append(("templated prompt, first piece (fixed, prerendered)", timed(first, tts.render)))
        value = [speech_chunks(TEMPLATE.format(n=3000 + i))[1] for i in range(n)]
        rows.append(("templated prompt, the piece with the value (uncached)", timed(value, tts.render)))
        rows.append(("cached in memory", timed(sentences, tts.render)))
        fresh = TextToSpeech(Path(tmp) / "cache")
        rows.append(("cached on disk (new process)", timed(sentences, fresh.render)))
        loaded = [SENTENCE.format(n=5000 + i) for i in range(4 * n)]
        with ThreadPoolExecutor(4) as pool:
            under_load = list(pool.map(lambda text: timed([text], tts.render)[0], loaded))
        rows.append(("uncached, 4 renders at once (2 workers)", under_load))
        tts.close()
        fresh.close()

        def process_per_prompt(text: str) -> None:  # the design this replaced, without its spare
            once = TextToSpeech(Path(tmp) / "cache-once", workers=1)
            once.render(text)
            once.close()

        rows.append(
            ("uncached, a new process per prompt", timed(sentences[: max(3, n // 3)], process_per_prompt))
        )
    print("| case | p50 ms | p95 ms |")
    print("| --- | --- | --- |")
    for name, values in rows:
        print(f"| {name} | {ms(values)} |")


if __name__ == "__main__":
    main()
