"""Which intent an utterance means: phrase matching that tolerates extra words.

Scores, best first: the whole utterance is a phrase (1.0); a phrase appears inside it,
longer phrases scoring higher (0.8-0.95); most of a phrase's content words appear (up to 0.6).
Matchers are built once per step when the flow loads, so a turn is a few set operations.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flows.model import Intent

STOPWORDS = frozenset(
    {
        "i",
        "id",
        "im",
        "a",
        "an",
        "the",
        "to",
        "my",
        "me",
        "please",
        "would",
        "like",
        "want",
        "can",
        "you",
        "for",
        "of",
        "on",
        "in",
        "and",
        "is",
        "it",
        "need",
        "do",
        "just",
        "uh",
        "um",
        "so",
        "could",
        "will",
        "be",
        "with",
        "about",
        "that",
        "this",
        "hi",
        "hello",
        "thanks",
        "thank",
    }
)
_WORD = re.compile(r"[a-z0-9]+")
MIN_OVERLAP = 0.6


def normalize(text: str) -> tuple[str, ...]:
    """Lower-case words without punctuation; apostrophes vanish (``don't`` -> ``dont``)."""
    return tuple(_WORD.findall(text.lower().replace("'", "").replace("’", "")))


@dataclass(frozen=True)
class Match:
    intent: Intent
    score: float
    is_global: bool


@dataclass(frozen=True)
class _Entry:
    intent: Intent
    words: tuple[str, ...]
    content: frozenset[str]
    is_global: bool


class PhraseMatcher:
    """Matches utterances against a step's intents and the global intents active there."""

    def __init__(self, intents: tuple[Intent, ...], globals_: tuple[Intent, ...] = ()) -> None:
        self._entries: list[_Entry] = []
        for group, is_global in ((intents, False), (globals_, True)):
            for intent in group:
                for phrase in intent.phrases:
                    words = normalize(phrase)
                    if words:
                        content = frozenset(w for w in words if w not in STOPWORDS) or frozenset(words)
                        self._entries.append(_Entry(intent, words, content, is_global))

    def match(self, text: str) -> Match | None:
        """The best match, or ``None``; a step intent wins a tie against a global one."""
        words = normalize(text)
        if not words:
            return None
        joined = " " + " ".join(words) + " "
        present = frozenset(words)
        best: Match | None = None
        for entry in self._entries:
            score = _score(entry, words, joined, present)
            if score <= 0:
                continue
            if (
                best is None
                or score > best.score
                or (score == best.score and best.is_global and not entry.is_global)
            ):
                best = Match(entry.intent, score, entry.is_global)
        return best


def _score(entry: _Entry, words: tuple[str, ...], joined: str, present: frozenset[str]) -> float:
    if entry.words == words:
        return 1.0
    if " " + " ".join(entry.words) + " " in joined:
        return 0.8 + 0.15 * len(entry.words) / len(words)
    found = len(entry.content & present) / len(entry.content)
    return 0.6 * found if found >= MIN_OVERLAP else 0.0
