"""Right intent, wrong intent, rejected: the demo menu heard by the recognizer, as a flow acts on it.

Each sentence of ``bench/intent_set.py`` (a tuning set and a held-out set, reported apart) is
decoded in grammar mode against the demo flow's ``ask`` step (its phrases plus the active
global intents, exactly the call's ``Listen``), cut ``media.end_silence_ms`` after the speech
like the endpointer does; the final then goes through the flow's own rule (``in_grammar`` and
confidence >= ``reject_below``, then the step's :class:`~flows.matching.PhraseMatcher`). A
wrong intent is a false accept: the flow acts on something the caller did not ask for, which
is far worse than a reprompt.

Run: .venv/bin/python bench/bench_intent.py [--data DIR] [--set tuning|heldout|all] [--show-errors]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_set import read_wav
from bench.intent_set import FLOW, SETS, STEP, Sentence, build
from flows.loader import load_flow
from media.asr.base import AsrEngine, Expectation
from media.frames import SAMPLE_RATE, split_frames

END_SILENCE_S = 0.3


def decide(engine: AsrEngine, items: list[Sentence]) -> list[tuple[Sentence, str | None, str]]:
    """(sentence, intent the flow takes or None, what the recognizer said) per sentence."""
    flow = load_flow(FLOW)
    listen, matcher = flow.listens[STEP], flow.matchers[STEP]
    stream = engine.open_stream(Expectation(listen.phrases, open_vocabulary=listen.open_vocabulary))
    out: list[tuple[Sentence, str | None, str]] = []
    for item in items:
        audio = read_wav(item.path)
        for frame in split_frames(audio[: int((item.speech_end_s + END_SILENCE_S) * SAMPLE_RATE)]):
            stream.push_frame(frame)
        result = stream.flush()
        intent = None
        if result.text.strip() and result.in_grammar and result.confidence >= flow.settings.reject_below:
            match = matcher.match(result.text)
            intent = match.intent.name if match is not None else None
        out.append(
            (item, intent, f"{result.text!r} in_grammar={result.in_grammar} conf={result.confidence:.2f}")
        )
    stream.close()
    return out


def report(decisions: list[tuple[Sentence, str | None, str]], show_errors: bool) -> None:
    print("| set | sentences | n | right intent | wrong intent (false accept) | rejected (reprompt) |")
    print("| --- | --- | --- | --- | --- | --- |")
    groups = [("listed", ("listed",)), ("paraphrase", ("paraphrase",)), ("off-menu", ("off_menu",)),
              ("all", ("listed", "paraphrase", "off_menu"))]  # fmt: skip
    for split in SETS:
        for label, kinds in groups:
            counts: Counter[str] = Counter()
            for item, intent, _ in decisions:
                if item.split == split and item.kind in kinds:
                    if intent is None:
                        counts["right" if item.expected is None else "rejected"] += 1
                    else:
                        counts["right" if intent == item.expected else "wrong"] += 1
            n = sum(counts.values())
            if n:
                cells = " | ".join(
                    f"{100 * counts[k] / n:.1f} % ({counts[k]})" for k in ("right", "wrong", "rejected")
                )
                print(f"| {split} | {label} | {n} | {cells} |")
    if show_errors:
        for item, intent, heard in decisions:
            if intent != item.expected:
                print(
                    f"  {item.split:7} {item.kind:10} {item.voice:17} {item.text!r} -> {intent} ({heard})",
                    file=sys.stderr,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("data/eval-intent"))
    parser.add_argument("--set", choices=(*SETS, "all"), default="all", help="which set to decode")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    from media.asr.pocketsphinx_engine import PocketsphinxEngine

    items = build(args.data, tuple(SETS) if args.set == "all" else (args.set,))
    t0 = time.perf_counter()
    decisions = decide(PocketsphinxEngine(), items)
    elapsed = time.perf_counter() - t0
    report(decisions, args.show_errors)
    load = os.getloadavg()
    print(f"{len(items)} sentences decoded in {elapsed:.1f} s; load average {load[0]:.1f}", file=sys.stderr)


if __name__ == "__main__":
    main()
