"""Rules anchored on a prompt: ``required_prompt`` (the bot read it in full, not talked over)
and ``acknowledgement`` (the caller agreed right after it; also the caller side of
``outcome_consistent``).

Barge-in: a bot turn may carry ``"interrupted": true`` (or ``"barged_in": true``); sidecars
that predate that mark are judged from the times: a caller turn that overlaps a bot turn is
the caller talking over it, and a bot turn of 0 s (or spoken faster than the rule's
``max_words_per_minute``) was cut short.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from recordings.qa_context import EPSILON, Anchor, Context, RuleStatus, Verdict, untranscribed
from recordings.qa_matching import Phrase, clip, found_any
from recordings.qa_rules import CallerSays, RequiredPrompt
from recordings.qa_transcript import Call, Span, Turn

OVERLAP_TOLERANCE_S = 0.05
"""A caller turn must reach this far into a bot turn to count as talking over it (rounding)."""


@dataclass
class _Reading:
    """One attempt at saying every segment in order: per segment, the bot turns carrying it."""

    segments: list[list[Turn] | None]
    issues: list[tuple[str, list[Span]]] = field(default_factory=list)

    @property
    def found(self) -> int:
        return sum(1 for turns in self.segments if turns)

    @property
    def turns(self) -> list[Turn]:
        return [turn for turns in self.segments if turns for turn in turns]


class _BotStream:
    """Every bot turn's words joined, so a segment can be searched across turn boundaries."""

    def __init__(self, turns: Sequence[Turn]) -> None:
        self.turns = list(turns)
        self.offsets: list[int] = []
        pieces: list[str] = []
        offset = 0
        for turn in self.turns:
            self.offsets.append(offset)
            pieces.append(turn.norm)
            offset += len(turn.norm) + 1
        self.text = " ".join(pieces)

    def turns_in(self, start: int, end: int) -> list[Turn]:
        return [
            turn
            for turn, offset in zip(self.turns, self.offsets, strict=True)
            if offset < end and offset + len(turn.norm) > start
        ]


def required_prompt(context: Context, rule_id: str, check: RequiredPrompt) -> Verdict:
    """Judged on the best reading of the prompt (the last clean one, else the most complete); where
    it was read is kept as the anchor that rule's acknowledgement must follow."""
    call = context.call
    if missing := untranscribed(call, "bot"):
        return missing
    stream = _BotStream(call.of("bot"))
    readings = _readings(stream, check.segments)
    if not readings:
        first = check.segments[0].text if check.segments else ""
        return Verdict("fail", f"never said: {clip(first)}")
    for reading in readings:
        reading.issues = _issues(call, reading, check)
    clean = [r for r in readings if r.found == len(check.segments) and not r.issues]
    chosen = (
        clean[-1] if clean else max(readings, key=lambda r: (r.found, -len(r.issues), r.turns[0].start_s))
    )
    last = chosen.turns[-1]
    context.anchors[rule_id] = Anchor.after(last)
    spans = [t.span for t in chosen.turns]
    if clean:
        times = "once" if len(clean) == 1 else f"{len(clean)} times"
        whole = Span(spans[0].start_s, last.end_s)
        return Verdict("pass", f"said in full {times}, last at {whole.label()}", [whole])
    problems = [text for text, _ in chosen.issues]
    if chosen.issues:
        spans = [span for _, extra in chosen.issues for span in extra]
    unsaid = [i for i, turns in enumerate(chosen.segments) if not turns]
    problems = [
        f"segment {i + 1} of {len(check.segments)} never said: {clip(check.segments[i].text)}" for i in unsaid
    ] + problems
    attempt = "" if len(readings) == 1 else f" (best of {len(readings)} attempts)"
    return Verdict("fail", "; ".join(problems) + attempt, spans)


def _readings(stream: _BotStream, segments: Sequence[Phrase]) -> list[_Reading]:
    """One attempt per time the first segment was said, each up to the next one (a re-read after
    "read it again" is a new attempt); one attempt from the start if the first was never said."""
    starts: list[int] = []
    cursor = 0
    while segments and len(starts) < 50:
        match = segments[0].search(stream.text, cursor)
        if match is None:
            break
        starts.append(match.start())
        cursor = match.end()
    bounds = list(zip(starts or [0], [*starts[1:], len(stream.text)], strict=True))
    readings: list[_Reading] = []
    for begin, end in bounds:
        cursor = begin
        found: list[list[Turn] | None] = []
        for segment in segments:
            match = segment.pattern.search(stream.text, cursor, end)
            if match is None:
                found.append(None)
                continue
            found.append(stream.turns_in(match.start(), match.end()))
            cursor = match.end()
        if any(found):
            readings.append(_Reading(found))
    return readings


def _issues(call: Call, reading: _Reading, check: RequiredPrompt) -> list[tuple[str, list[Span]]]:
    issues: list[tuple[str, list[Span]]] = []
    seen: set[int] = set()
    callers = call.of("caller")
    for index, turns in enumerate(reading.segments):
        for turn in turns or ():
            if turn.position in seen:
                continue
            seen.add(turn.position)
            label = f"segment {index + 1}" if len(reading.segments) > 1 else "the prompt"
            duration = turn.end_s - turn.start_s
            words = len(turn.norm.split())
            if turn.interrupted:
                issues.append((f"{label} was cut off at {turn.end_s:.2f}s (barge-in)", [turn.span]))
            elif duration <= EPSILON:
                issues.append(
                    (f"{label} was never played (0 s of audio at {turn.start_s:.2f}s)", [turn.span])
                )
            elif check.max_words_per_minute and words / duration * 60 > check.max_words_per_minute:
                issues.append(
                    (
                        f"{label} lasted {duration:.1f}s for {words} words: cut short at {turn.end_s:.2f}s",
                        [turn.span],
                    )
                )
            if check.barge_in_allowed:
                continue
            for caller in callers:
                if _overlaps(caller, turn):
                    issues.append(
                        (
                            f"the caller spoke over {label} at {caller.start_s:.2f}s "
                            f"(bot {turn.span.label()}, caller {caller.span.label()}"
                            + (f": {caller.quote(40)})" if caller.text else ")"),
                            [turn.span, caller.span],
                        )
                    )
    return issues


def _overlaps(caller: Turn, bot: Turn) -> bool:
    return (
        caller.start_s < bot.end_s - OVERLAP_TOLERANCE_S and caller.end_s > bot.start_s + OVERLAP_TOLERANCE_S
    )


# -- acknowledgement, and the caller side of outcome_consistent -------------------------------


def caller_says(context: Context, says: CallerSays, missing_anchor: RuleStatus) -> Verdict:
    """The caller's next turns after the anchor; ``missing_anchor`` is the status when the bot never
    said it (an acknowledgement then does not apply, an outcome rule fails)."""
    call = context.call
    if says.after_rule:
        upstream = context.verdicts.get(says.after_rule)
        if upstream is not None and upstream.status == "not_evaluable":
            return Verdict("not_evaluable", f"rule {says.after_rule!r} could not be evaluated")
        anchor = context.anchors.get(says.after_rule)
        what = f"the prompt of rule {says.after_rule!r}"
    else:
        assert says.after is not None  # the loader requires after or after_rule
        if missing := untranscribed(call, "bot"):
            return missing
        said = call.saying("bot", says.after)
        anchor = Anchor.after(said[-1]) if said else None
        what = clip(says.after.text)
    if anchor is None:
        return Verdict(missing_anchor, f"the bot never said {what}")
    if missing := untranscribed(call, "caller"):
        return missing
    answers = [t for t in call.turns if t.speaker == "caller" and t.position > anchor.position]
    answers = answers[: says.within_turns]
    for turn in answers:
        if found_any(says.phrases, turn.norm) and not found_any(says.not_phrases, turn.norm):
            return Verdict("pass", f"the caller said {turn.quote()} at {turn.span.label()}", [turn.span])
    after = Span(anchor.end_s, anchor.end_s)
    if not answers:
        return Verdict("fail", f"the caller said nothing after {what} (ended {anchor.end_s:.2f}s)", [after])
    if any(turn.redacted for turn in answers):
        return Verdict("not_evaluable", f"the caller's answer after {what} was redacted")
    heard = ", ".join(f"{t.quote(40)} at {t.start_s:.2f}s" for t in answers)
    turns = "turn" if says.within_turns == 1 else f"{says.within_turns} turns"
    return Verdict(
        "fail",
        f"no {clip(says.phrases[0].text, 30)} (or the like) in the caller's next {turns} after {what} "
        f"(ended {anchor.end_s:.2f}s): heard {heard}",
        [after, *(t.span for t in answers)],
    )
