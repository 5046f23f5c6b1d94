"""Phrase grammars shared by the engines: normalising a step's phrases and mapping words back.

A flow step lists what it expects to hear ("Check my balance", "talk to an agent", "0").
Recognizers work on lower-case word tokens, so each phrase is normalised once; the decoded
words are then mapped back to the phrase *as the flow wrote it*, which is what
``FinalResult.text`` carries in grammar mode so the flow can look the intent up directly.
"""

from __future__ import annotations

import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass

from config.errors import MediaError

DIGIT_WORDS: Mapping[str, str] = {
    "0": "zero", "1": "one", "2": "two", "3": "three", "4": "four",
    "5": "five", "6": "six", "7": "seven", "8": "eight", "9": "nine",
}  # fmt: skip

# What callers say around a menu's key words ("I'd like to ... please"): optional before and
# after every English phrase, so natural phrasing is not forced onto the nearest phrase nor
# thrown into the garbage loop. The engine marks these words so they never reach the match.
CARRIERS_BEFORE = (
    "i would like to", "i'd like to", "i would like", "i'd like", "i want to", "i need to",
    "can i", "could i", "could you", "can you", "i think", "please", "uh", "um",
)  # fmt: skip
CARRIERS_AFTER = ("please", "thank you", "thanks")

# Letters of any script, digits, and apostrophes inside words ("don't"); everything else splits.
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*", re.UNICODE)


class AsrGrammarError(MediaError):
    """A step's phrases cannot be turned into a grammar (empty phrase, unknown word)."""


def normalize_phrase(phrase: str, digit_words: Mapping[str, str] | None = DIGIT_WORDS) -> tuple[str, ...]:
    """Lower-case word tokens of ``phrase``; ASCII digits are spelled out one by one.

    ``"Press 10!"`` becomes ``("press", "one", "zero")``: callers say digits, not numbers.
    Pass ``digit_words=None`` for languages whose lexicon has no English digit words.
    """
    tokens: list[str] = []
    for token in _TOKEN.findall(phrase.lower()):
        if digit_words is not None and token.isascii() and token.isdigit():
            tokens.extend(digit_words[ch] for ch in token)
        else:
            tokens.extend(_split_digit_runs(token, digit_words))
    return tuple(tokens)


def _split_digit_runs(token: str, digit_words: Mapping[str, str] | None) -> list[str]:
    if digit_words is None or not any(ch.isascii() and ch.isdigit() for ch in token):
        return [token]
    parts = re.findall(r"[0-9]|[^0-9]+", token)
    return [digit_words.get(part, part) for part in parts]


@dataclass(frozen=True)
class PhraseSet:
    """A step's phrases, normalised, with the way back from words to the flow's spelling."""

    phrases: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]

    @classmethod
    def build(cls, phrases: Sequence[str], digit_words: Mapping[str, str] | None = DIGIT_WORDS) -> PhraseSet:
        """Normalise ``phrases``; an empty or duplicate phrase is an :class:`AsrGrammarError`."""
        if not phrases:
            raise AsrGrammarError("grammar: a grammar needs at least one phrase")
        seen: dict[tuple[str, ...], str] = {}
        kept: list[str] = []
        tokens: list[tuple[str, ...]] = []
        for index, phrase in enumerate(phrases):
            words = normalize_phrase(phrase, digit_words)
            if not words:
                raise AsrGrammarError(f"grammar: phrases[{index}] {phrase!r} has no words to recognise")
            if words in seen:
                # Two spellings of one utterance ("Yes", "yes."): the first one names the intent.
                continue
            seen[words] = phrase
            kept.append(phrase)
            tokens.append(words)
        return cls(tuple(kept), tuple(tokens))

    @property
    def vocabulary(self) -> tuple[str, ...]:
        """Every distinct word, in first-seen order."""
        return tuple(dict.fromkeys(word for words in self.tokens for word in words))

    def match(self, words: Iterable[str]) -> str | None:
        """The phrase (as the flow spelled it) whose words are exactly ``words``, else None."""
        key = tuple(words)
        for phrase, tokens in zip(self.phrases, self.tokens, strict=True):
            if tokens == key:
                return phrase
        return None

    @property
    def is_menu(self) -> bool:
        """Some phrase has several words: callers wrap such menus in carrier phrases, while a
        list of single words (digits, yes/no) is answered with the word alone."""
        return any(len(tokens) > 1 for tokens in self.tokens)

    def ends_turn(self, phrase: str) -> bool:
        """True when ``phrase`` is one of the set and no strict prefix of a longer phrase.

        "ten" in a set holding "ten in the morning" may be the first half of an answer said
        with a pause, so it must not end the caller's turn early.
        """
        if phrase not in self.phrases:
            return False
        words = self.tokens[self.phrases.index(phrase)]
        return not any(len(t) > len(words) and t[: len(words)] == words for t in self.tokens)

    def with_prefixes(self) -> PhraseSet:
        """These phrases plus each one's first words ("ten", "ten in", "ten in the" of "ten in
        the morning"): a grammar a caller's pause mid-phrase can match without being forced."""
        prefixes = tuple(" ".join(t[:n]) for t in self.tokens for n in range(1, len(t)))
        return PhraseSet.build(self.phrases + prefixes)

    def unknown_words(self, known: Container[str]) -> list[str]:
        """Words of this set that a recognizer's lexicon ``known`` lacks."""
        return [word for word in self.vocabulary if word not in known]


def jsgf_grammar(
    phrase_set: PhraseSet,
    garbage_words: Sequence[str] = (),
    garbage_weight: float = 1e-25,
    name: str = "step",
    *,
    carriers: tuple[Sequence[str], Sequence[str]] = ((), ()),
    carriers_alone: bool = False,
) -> str:
    """A JSGF grammar: one of the phrases, or (weighted down) a loop of garbage words.

    The garbage loop is the out-of-grammar path: speech that fits no phrase is absorbed by it
    instead of being forced onto the nearest phrase. Its weight is a prior, so it only wins
    when the phrases explain the audio clearly worse. ``carriers`` (phrases before, after; in
    the engine's marked spelling) may wrap any phrase: "i'd like to" + phrase + "please".
    ``carriers_alone`` also takes a leading carrier by itself ("i'd like to" and a pause: the
    caller is not done), so it is not heard as off-menu speech.
    """
    alternatives = " | ".join(" ".join(words) for words in phrase_set.tokens)
    lines = ["#JSGF V1.0;", f"grammar {name};"]
    before, after = carriers
    phrase = "<phrase>"
    if before:
        phrase = f"[<before>] {phrase}"
        lines.append(f"<before> = {' | '.join(before)};")
    if after:
        phrase = f"{phrase} [<after>]"
        lines.append(f"<after> = {' | '.join(after)};")
    if before and carriers_alone:
        phrase = f"{phrase} | <before>"
    if garbage_words:
        lines.append(f"public <utterance> = {phrase} | /{garbage_weight:g}/ <garbage>;")
        lines.append(f"<phrase> = {alternatives};")
        lines.append("<garbage> = <filler>+;")
        lines.append(f"<filler> = {' | '.join(garbage_words)};")
    else:
        lines.append(f"public <utterance> = {phrase};")
        lines.append(f"<phrase> = {alternatives};")
    return "\n".join(lines) + "\n"
