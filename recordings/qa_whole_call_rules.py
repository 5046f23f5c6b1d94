"""Rules over the whole call, anchored on no prompt: ``forbidden_phrases`` (nobody says them),
``max_silence`` (no dead air) and ``no_match`` (few "I didn't understand" reprompts).

Each scans every turn (or every gap between turns) and quotes what it found, at most
:data:`~recordings.qa_context.MAX_LISTED` of them, with their timestamps.
"""

from __future__ import annotations

from collections.abc import Iterable

from recordings.qa_context import EPSILON, MAX_LISTED, Verdict, untranscribed
from recordings.qa_matching import Phrase, clip, found_any
from recordings.qa_rules import ForbiddenPhrases, MaxSilence, NoMatch
from recordings.qa_transcript import Call, Span, Turn


def forbidden_phrases(call: Call, check: ForbiddenPhrases) -> Verdict:
    """A hit fails even if a track has no transcript; no hit passes only if every track read has one."""
    speakers = ("bot", "caller", "agent") if check.speaker == "any" else (check.speaker,)
    hits: list[tuple[Turn, Phrase]] = []
    for turn in call.of(*speakers):
        hits += [(turn, phrase) for phrase in check.phrases if phrase.found_in(turn.norm)]
    if hits:
        listed = "; ".join(
            f"{t.speaker} said {clip(p.text, 40)} at {t.span.label()}" for t, p in hits[:MAX_LISTED]
        )
        more = f" (and {len(hits) - MAX_LISTED} more)" if len(hits) > MAX_LISTED else ""
        return Verdict("fail", listed + more, [t.span for t, _ in hits])
    needed = ("bot", "caller") if check.speaker == "any" else speakers
    return untranscribed(call, *needed) or Verdict("pass", "none said")


def max_silence(call: Call, check: MaxSilence) -> Verdict:
    """Gaps between the end of the latest turn so far and the next turn, less recording pauses."""
    if not call.turns:
        return Verdict("not_evaluable", "the call has no turns")
    gaps: list[tuple[Span, float]] = []
    latest = call.turns[0]
    for turn in call.turns[1:]:
        start, end = latest.end_s, turn.start_s
        if end > start:
            silent = end - start - _paused(call.pauses, start, end)
            excused = latest.speaker == "bot" and found_any(check.except_after, latest.norm)
            if silent > check.max_gap_s + EPSILON and not excused:
                gaps.append((Span(start, end), silent))
        if turn.end_s >= latest.end_s:
            latest = turn
    if not gaps:
        return Verdict("pass", f"no gap longer than {check.max_gap_s:g}s")
    listed = ", ".join(f"{silent:.1f}s at {span.label()}" for span, silent in gaps[:MAX_LISTED])
    count = "a gap" if len(gaps) == 1 else f"{len(gaps)} gaps"
    return Verdict("fail", f"{count} longer than {check.max_gap_s:g}s: {listed}", [s for s, _ in gaps])


def _paused(pauses: Iterable[Span], start: float, end: float) -> float:
    """Seconds of ``start..end`` inside recording pauses (silence on purpose, e.g. card entry)."""
    return sum(max(0.0, min(end, p.end_s) - max(start, p.start_s)) for p in pauses)


def no_match(call: Call, check: NoMatch) -> Verdict:
    """Bot turns that say one of the rule's no-match phrases, counted."""
    if missing := untranscribed(call, "bot"):
        return missing
    reprompts = call.saying("bot", *check.phrases)
    count = len(reprompts)
    times = ", ".join(f"{t.start_s:.2f}s" for t in reprompts[:MAX_LISTED])
    if count > check.max_count:
        return Verdict(
            "fail",
            f"{count} no-match reprompts (at most {check.max_count}): at {times}",
            [t.span for t in reprompts],
        )
    return Verdict("pass", f"{count} no-match reprompt(s)" + (f" at {times}" if times else ""))
