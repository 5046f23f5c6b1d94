"""Reading one entry of a rules file's ``rules:`` list into a :class:`~recordings.qa_rules.Rule`.

Each kind has its own keys (:data:`KIND_KEYS`). Every reader here reports its problems to the
shared :class:`~flows.schema.Reader` and returns a usable default, so the loader
(:mod:`recordings.qa_rules_loader`) can list every mistake of a file in one pass.
"""

from __future__ import annotations

import re

from flows.schema import Reader
from flows.yaml_source import MarkedDict, MarkedList
from recordings.qa_matching import Phrase, compile_phrase, shorten
from recordings.qa_rules import (
    DEFAULT_NO_MATCH_PHRASES,
    DEFAULT_WITHIN_TURNS,
    Acknowledgement,
    CallerSays,
    Check,
    ForbiddenPhrases,
    MaxSilence,
    NoMatch,
    OutcomeConsistent,
    RequiredPrompt,
    Rule,
    When,
)

COMMON_KEYS = ("id", "kind", "description", "weight", "critical", "when")
WHEN_KEYS = ("outcome", "outcome_not", "bot_said")
CALLER_SAYS_KEYS = ("after", "after_rule", "phrases", "not_phrases", "within_turns")
KIND_KEYS: dict[str, tuple[str, ...]] = {
    "required_prompt": ("text", "barge_in", "max_words_per_minute"),
    "acknowledgement": CALLER_SAYS_KEYS,
    "forbidden_phrases": ("speaker", "phrases"),
    "max_silence": ("max_gap", "except_after"),
    "no_match": ("max", "phrases"),
    "outcome_consistent": ("outcome", "requires", "caller_says"),
}
RULE_KINDS = tuple(KIND_KEYS)
SPEAKER_CHOICES = ("bot", "caller", "agent", "any")
MAX_PHRASES = 500

_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


def read_rule(reader: Reader, item: MarkedDict, where: str) -> Rule | None:
    """The rule of one ``rules:`` entry; ``None`` when it has no usable kind."""
    rule_id = reader.text(item, "id", where).strip()
    if "id" not in item:
        reader.report(item.pos, f"{where}: missing 'id:'")
    elif not _ID.match(rule_id):
        reader.report(
            item.where_value("id"),
            f"{where}.id: {rule_id[:80]!r} is not an id: use letters, "
            "digits, _ and - (up to 64), starting with a letter",
        )
        rule_id = ""
    where = f"rule '{rule_id}'" if rule_id else where
    if "kind" not in item:
        reader.report(item.pos, f"{where}: missing 'kind:' (one of {', '.join(RULE_KINDS)})")
        return None
    kind = reader.choice(item, "kind", where, RULE_KINDS, "")
    if not kind:
        return None
    reader.check_keys(item, COMMON_KEYS + KIND_KEYS[kind], f"{where} ({kind})")
    return Rule(
        id=rule_id,
        kind=kind,
        check=_check(reader, item, kind, where),
        description=reader.text(item, "description", where),
        weight=number(reader, item, "weight", where, (1.0, 0.001, 1000)),
        critical=reader.boolean(item, "critical", where, False),
        when=_when(reader, item, where),
        file=reader.file,
        line=item.pos[0],
        col=item.pos[1],
    )


def _check(reader: Reader, item: MarkedDict, kind: str, where: str) -> Check:
    if kind == "required_prompt":
        segments = phrases(reader, item, "text", where, required=True)
        barge = reader.choice(item, "barge_in", where, ("forbidden", "allowed"), "forbidden")
        wpm = None
        if "max_words_per_minute" in item:
            wpm = number(reader, item, "max_words_per_minute", where, (400, 60, 2000))
        return RequiredPrompt(segments, barge_in_allowed=barge == "allowed", max_words_per_minute=wpm)
    if kind == "acknowledgement":
        return Acknowledgement(_caller_says(reader, item, where))
    if kind == "forbidden_phrases":
        speaker = reader.choice(item, "speaker", where, SPEAKER_CHOICES, "any")
        found = phrases(reader, item, "phrases", where, required=True)
        return ForbiddenPhrases(found, speaker)  # type: ignore[arg-type]
    if kind == "max_silence":
        if "max_gap" not in item:
            reader.report(item.pos, f"{where}: missing 'max_gap:' (e.g. 10s)")
        gap = reader.duration(item, "max_gap", where, 10.0)
        if gap <= 0:
            reader.report(item.where_value("max_gap"), f"{where}.max_gap: must be longer than 0s")
        return MaxSilence(gap, phrases(reader, item, "except_after", where))
    if kind == "no_match":
        if "max" not in item:
            reader.report(item.pos, f"{where}: missing 'max:' (how many no-match reprompts a call may have)")
        found = phrases(reader, item, "phrases", where)
        if "phrases" not in item:
            found = tuple(p for p in map(compile_phrase, DEFAULT_NO_MATCH_PHRASES) if p is not None)
        return NoMatch(reader.integer(item, "max", where, 2, 0, high=1000), found)
    outcomes = names(reader, item, "outcome", where)
    if "outcome" not in item:
        reader.report(item.pos, f"{where}: missing 'outcome:' (the outcome whose consistency is checked)")
    requires = names(reader, item, "requires", where)
    says = None
    raw_says = reader.mapping(item, "caller_says", where)
    if raw_says is not None:
        reader.check_keys(raw_says, CALLER_SAYS_KEYS, f"{where}.caller_says")
        says = _caller_says(reader, raw_says, f"{where}.caller_says")
    if "requires" not in item and "caller_says" not in item:
        reader.report(item.pos, f"{where}: give 'requires:' (rule ids) and/or 'caller_says:'")
    return OutcomeConsistent(outcomes, requires, says)


def _caller_says(reader: Reader, item: MarkedDict, where: str) -> CallerSays:
    if ("after" in item) == ("after_rule" in item):
        reader.report(
            item.pos,
            f"{where}: give exactly one of 'after:' (what the bot said) or "
            "'after_rule:' (the id of a required_prompt rule)",
        )
    return CallerSays(
        phrases=phrases(reader, item, "phrases", where, required=True),
        not_phrases=phrases(reader, item, "not_phrases", where),
        within_turns=reader.integer(item, "within_turns", where, DEFAULT_WITHIN_TURNS, 1, high=50),
        after=_one_phrase(reader, item, "after", where, required=True),
        after_rule=reader.text(item, "after_rule", where).strip(),
    )


def _when(reader: Reader, item: MarkedDict, where: str) -> When:
    raw = reader.mapping(item, "when", where)
    if raw is None:
        return When()
    reader.check_keys(raw, WHEN_KEYS, f"{where}.when")
    if not raw:
        reader.report(item.where_value("when"), f"{where}.when: empty: give outcome, outcome_not or bot_said")
    return When(
        outcomes=names(reader, raw, "outcome", f"{where}.when"),
        not_outcomes=names(reader, raw, "outcome_not", f"{where}.when"),
        bot_said=_one_phrase(reader, raw, "bot_said", f"{where}.when"),
    )


def _one_phrase(
    reader: Reader, item: MarkedDict, key: str, where: str, *, required: bool = False
) -> Phrase | None:
    """A key that takes one text (what the bot said), not a list; ``None`` when it is absent."""
    if key not in item:
        return None
    found = phrases(reader, item, key, where, required=required)
    if len(found) > 1:
        reader.report(item.where_value(key), f"{where}.{key}: expected one text, got a list")
    return found[0] if found else None


def phrases(
    reader: Reader, item: MarkedDict, key: str, where: str, *, required: bool = False
) -> tuple[Phrase, ...]:
    """The phrases of a text-or-list key; each text without a word to match is a problem."""
    if key not in item:
        if required:
            reader.report(item.pos, f"{where}: missing '{key}:'")
        return ()
    texts = reader.texts(item, key, where)
    if required and not texts and item[key] in ("", [], None):
        reader.report(item.where_value(key), f"{where}.{key}: give at least one text")
    if len(texts) > MAX_PHRASES:
        reader.report(
            item.where_value(key), f"{where}.{key}: {len(texts)} texts is too many (at most {MAX_PHRASES})"
        )
        return ()
    value = item[key]
    found: list[Phrase] = []
    for index, text in enumerate(texts):
        phrase = compile_phrase(text)
        if phrase is None:
            pos = value.where(index) if isinstance(value, MarkedList) else item.where_value(key)
            label = f"{where}.{key}[{index}]" if isinstance(value, MarkedList) else f"{where}.{key}"
            reader.report(pos, f"{label}: {text[:60]!r} has no word to match")
            continue
        found.append(phrase)
    return tuple(found)


def names(reader: Reader, item: MarkedDict, key: str, where: str) -> tuple[str, ...]:
    """Outcome, flow, campaign or rule names: a text or a list of them, none empty."""
    found = tuple(name.strip() for name in reader.texts(item, key, where))
    if any(not name for name in found):
        reader.report(item.where_value(key), f"{where}.{key}: names must not be empty")
    return tuple(name for name in found if name)


def number(
    reader: Reader, item: MarkedDict, key: str, where: str, limits: tuple[float, float, float]
) -> float:
    """``limits`` is (default, lowest, highest); a value out of them is reported and ``default`` used."""
    default, low, high = limits
    value = item.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        reader.report(
            item.where_value(key),
            f"{where}.{key}: expected a number from {low:g} to {high:g}, got {shorten(repr(value))}",
        )
        return default
    return float(value)
