"""Right intent, wrong intent, rejected: the demo menu heard by the recognizer, as a flow acts on it.

Each sentence of ``bench/intent_set.py`` (a tuning set and a held-out set, reported apart) is
decoded in grammar mode against the demo flow's ``ask`` step (its phrases plus the active
global intents, exactly the call's ``Listen``), cut ``media.end_silence_ms`` after the speech
like the endpointer does; the final then goes through the flow's own rule (``in_grammar`` and
confidence >= ``reject_below``, then the step's answer and the check it needs,
:func:`flows.confirmation.check_for`: a low confidence is read back before it is acted on). A
wrong intent acted on at once is a false accept: the flow acts on something the caller did not
ask for, which is far worse than a reprompt; a wrong intent read back costs one question (the
caller says no), a right one read back costs the caller a "yes".

Run: .venv/bin/python bench/bench_intent.py [--data DIR] [--set tuning|heldout|all] [--show-errors]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.eval_set import read_wav
from bench.intent_set import FLOW, SETS, STEP, Sentence, build
from flows.answers import interpret
from flows.confirmation import check_for
from flows.loader import load_flow
from media.asr.base import AsrEngine, Expectation
from media.frames import SAMPLE_RATE, split_frames

END_SILENCE_S = 0.3


Decision = tuple[Sentence, str | None, bool, str]


def decide(engine: AsrEngine, items: list[Sentence]) -> list[Decision]:
    """(sentence, intent the flow takes or None, whether it asks back first, what the
    recognizer said) per sentence."""
    flow = load_flow(FLOW)
    listen = flow.listens[STEP]
    stream = engine.open_stream(Expectation(listen.phrases, open_vocabulary=listen.open_vocabulary))
    out: list[Decision] = []
    for item in items:
        audio = read_wav(item.path)
        for frame in split_frames(audio[: int((item.speech_end_s + END_SILENCE_S) * SAMPLE_RATE)]):
            stream.push_frame(frame)
        result = stream.flush()
        intent, asked = None, False
        if result.text.strip() and result.in_grammar and result.confidence >= flow.settings.reject_below:
            answer = interpret(flow, STEP, result.text, date.today())
            if answer is not None and answer.intent is not None:
                intent = answer.intent.name
                asked = bool(check_for(flow, STEP, answer, result.confidence, keyed=False))
        heard = f"{result.text!r} in_grammar={result.in_grammar} conf={result.confidence:.2f}"
        out.append((item, intent, asked, heard))
    stream.close()
    return out


COLUMNS = ("right", "right_asked", "wrong", "wrong_asked", "rejected")


def outcome(item: Sentence, intent: str | None, asked: bool) -> str:
    """One of :data:`COLUMNS`; an off-menu sentence is right when rejected."""
    if intent is None:
        return "right" if item.expected is None else "rejected"
    kind = "right" if intent == item.expected else "wrong"
    return kind + "_asked" if asked else kind


def report(decisions: list[Decision], show_errors: bool) -> None:
    print(
        "| set | sentences | n | right intent (at once) | right after read-back | wrong intent "
        "(false accept) | wrong read back (caller says no) | rejected (reprompt) |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    groups = [("listed", ("listed",)), ("paraphrase", ("paraphrase",)), ("off-menu", ("off_menu",)),
              ("all", ("listed", "paraphrase", "off_menu"))]  # fmt: skip
    for split in SETS:
        for label, kinds in groups:
            counts: Counter[str] = Counter()
            for item, intent, asked, _ in decisions:
                if item.split == split and item.kind in kinds:
                    counts[outcome(item, intent, asked)] += 1
            n = sum(counts.values())
            if n:
                cells = " | ".join(f"{100 * counts[k] / n:.1f} % ({counts[k]})" for k in COLUMNS)
                print(f"| {split} | {label} | {n} | {cells} |")
    if show_errors:
        for item, intent, asked, heard in decisions:
            if intent != item.expected or asked:
                how = "asked" if asked else "taken"
                print(
                    f"  {item.split:7} {item.kind:10} {item.voice:17} {item.text!r} -> {intent} {how}",
                    f"({heard})",
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
