"""The turn-latency bench's Markdown tables, and its generated block in docs/benchmarks.md
(section ``turn-latency``, markers in the style of the capacity section's)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.capacity_report import Column, markdown_table, write_generated_block
from bench.turn_calls import TurnSample, VoiceRun
from bench.turn_measure import Stats, stats

TITLE = "## Turn latency over real SIP, from the stereo recordings (turn-latency)"
GOAL_P50_MS, GOAL_P95_MS = 400.0, 600.0  # caller stops -> bot audible
GOAL_FIRST_FRAME_P95_MS = 50.0  # decision -> first frame
GOAL_TEMPLATED_MS = 100.0  # uncached templated prompt: first audio

# (label, start, end): a span between two sidecar marks or energy edges (see TurnSample.span_ms)
SPANS = (
    ("caller's audio ends -> VAD speech end (`speech_end_s`)", "caller_end", "speech_end_s"),
    ("speech end -> end of turn decided (`decided_s`): trailing silence", "speech_end_s", "decided_s"),
    ("decided -> recognizer final (`asr_final_s`)", "decided_s", "asr_final_s"),
    ("final -> reply's first frame (`reply_start_s`): flow, TTS, queue", "asr_final_s", "reply_start_s"),
    ("first frame -> bot audible (silence the prompt opens with)", "reply_start_s", "bot_start"),
    ("**caller's audio ends -> bot audible** (marked turns)", "caller_end", "bot_start"),
)


def _spans(samples: Sequence[TurnSample], start: str, end: str) -> Stats:
    return stats([v for v in (s.span_ms(start, end) for s in samples) if v is not None])


def _met(value: float, goal: float) -> str:
    shown = round(value)  # judged as printed: marks are on a 1 ms grid, float sums are not
    return f"{shown} ms ({'met' if shown <= goal else 'MISSED'}, goal <= {goal:.0f})"


def _audible(samples: Sequence[TurnSample]) -> str:
    return stats([s.latency_ms for s in samples]).cells()


def _from_decided(samples: Sequence[TurnSample]) -> str:
    return _spans(samples, "decided_s", "reply_start_s").cells()


def _from_final(samples: Sequence[TurnSample]) -> str:
    return _spans(samples, "asr_final_s", "reply_start_s").cells()


VoiceRow = tuple[str, VoiceRun | None, list[TurnSample]]


def voice_table(runs: Sequence[VoiceRun]) -> str:
    rows: list[VoiceRow] = [(r.voice, r, r.samples) for r in runs]
    rows.append(("**all**", None, [s for r in runs for s in r.samples]))

    def total(get: Callable[[VoiceRun], int]) -> Callable[[VoiceRow], object]:
        return lambda row: get(row[1]) if row[1] is not None else sum(get(r) for r in runs)

    C = Column[VoiceRow]
    return markdown_table(
        [
            C("voice", lambda row: row[0], numeric=False),
            C("calls", total(lambda r: r.calls)),
            C("failed (sipp)", total(lambda r: r.failed)),
            C("complete recordings", total(lambda r: r.complete)),
            C("intent right", total(lambda r: r.understood)),
            C("turns measured", lambda row: len(row[2])),
            C("caller stops -> bot audible, ms p50 / p95 / max", lambda row: _audible(row[2])),
            C("end of turn decided -> first frame", lambda row: _from_decided(row[2])),
            C("recognizer final -> first frame", lambda row: _from_final(row[2])),
            C("load avg before -> after", lambda row: row[1].load if row[1] else "", numeric=False),
        ],
        rows,
    )


SpanRow = tuple[str, Stats]


def span_table(samples: Sequence[TurnSample]) -> str:
    rows: list[SpanRow] = [(label, _spans(samples, a, b)) for label, a, b in SPANS]
    C = Column[SpanRow]
    return markdown_table(
        [
            C("span (sidecar marks, energy edges of the recording)", lambda r: r[0], numeric=False),
            C("turns", lambda r: r[1].n),
            C("p50 ms", lambda r: f"{r[1].p50:.0f}" if r[1].n else "-"),
            C("p95 ms", lambda r: f"{r[1].p95:.0f}" if r[1].n else "-"),
            C("max ms", lambda r: f"{r[1].max:.0f}" if r[1].n else "-"),
        ],
        rows,
    )


ReadbackRow = tuple[str, list[TurnSample]]


def readback_table(samples: Sequence[TurnSample]) -> str:
    readbacks = [s for s in samples if s.readback]
    rows: list[ReadbackRow] = [
        (
            "value rendered during the call (first of its text in a serve)",
            [s for s in readbacks if s.uncached],
        ),
        ("value from the cache", [s for s in readbacks if not s.uncached]),
    ]
    C = Column[ReadbackRow]
    return markdown_table(
        [
            C('"I heard: {{ heard }}. ..." read-backs', lambda r: r[0], numeric=False),
            C("turns", lambda r: len(r[1])),
            C("end of turn decided -> first frame, ms p50 / p95 / max", lambda r: _from_decided(r[1])),
            C("recognizer final -> first frame", lambda r: _from_final(r[1])),
            C("caller stops -> bot audible", lambda r: _audible(r[1])),
            C('pause after "I heard:"', lambda r: stats([1000 * s.pause_s for s in r[1]]).cells()),
        ],
        rows,
    )


def goals(samples: Sequence[TurnSample]) -> list[str]:
    """The issue's goals, each with the figure measured and whether it was met."""
    audible = stats([s.latency_ms for s in samples])
    decided = _spans(samples, "decided_s", "reply_start_s")
    final = _spans(samples, "asr_final_s", "reply_start_s")
    uncached = [s for s in samples if s.readback and s.uncached]
    first = _spans(uncached, "asr_final_s", "reply_start_s")
    first_decided = _spans(uncached, "decided_s", "reply_start_s")
    if not audible.n:
        return ["- No turn could be measured."]
    lines = [
        f"- Caller stops -> bot audible over {audible.n} turns: p50 {_met(audible.p50, GOAL_P50_MS)}, "
        f"p95 {_met(audible.p95, GOAL_P95_MS)}.",
    ]
    heard = stats([s.latency_ms for s in samples if s.readback])
    others = len(samples) - heard.n
    if heard.n and others:
        lines.append(
            f"- The same over the {heard.n} turns answered with the read-back (the recognizer "
            f"found a complete phrase): p50 {heard.p50:.0f} ms, p95 {heard.p95:.0f} ms; the other "
            f"{others} got another reply (a reprompt after a no-match)."
        )
    if final.n:
        lines.append(
            f"- Decision -> first frame, p95 over {final.n} turns: from the recognizer's final "
            f"{_met(final.p95, GOAL_FIRST_FRAME_P95_MS)}; from the end-of-turn decision "
            f"{_met(decided.p95, GOAL_FIRST_FRAME_P95_MS)}."
        )
    if first.n:
        lines.append(
            f"- Uncached templated prompt, first audio, max over {first.n} read-backs: from the "
            f"recognizer's final {_met(first.max, GOAL_TEMPLATED_MS)}; from the end-of-turn "
            f"decision {_met(first_decided.max, GOAL_TEMPLATED_MS)}."
        )
    return lines


def update_docs(block: str, tag: str) -> None:
    """The turn-latency section's generated block for ``tag``."""
    write_generated_block("turn-latency", TITLE, block, tag)
