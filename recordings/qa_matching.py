"""Matching a rule's phrases against what was said, on words rather than characters.

Transcripts and rules files are written by different hands (an ASR, a QA team copying prompt
texts from a flow), so case, punctuation and apostrophes must not count (``Don't`` = ``dont``),
and a template such as ``{{ contact.product }}`` inside a rule's text stands for up to
:data:`WILDCARD_WORDS` words, so a prompt's text can be copied from the flow as it is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

WILDCARD_WORDS = 20
"""How many words a ``{{ ... }}`` template in a rule's text may stand for."""

_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)
_WORD = re.compile(r"(?:[^\W_]|[#*])+")
_WILD = "\x00"


def normalize(text: str) -> str:
    """Lower-case words separated by one space; apostrophes vanish, ``#`` and ``*`` stay (keys)."""
    folded = text.casefold().replace("'", "").replace("\u2019", "")
    return " ".join(_WORD.findall(folded))


def shorten(text: str, limit: int = 60) -> str:
    """``text`` cut to ``limit`` characters with ``...``, so one long text cannot swamp a message."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def clip(text: str, limit: int = 60) -> str:
    """``text`` shortened and quoted, as messages quote what was (or should have been) said."""
    return repr(shorten(text, limit))


@dataclass(frozen=True)
class Phrase:
    """A text to look for in a turn, as written in the rules file and as a word pattern."""

    text: str
    pattern: re.Pattern[str] = field(compare=False, repr=False)
    words: int = 0
    """Literal words in the phrase (templates not counted)."""

    def search(self, normalized: str, pos: int = 0) -> re.Match[str] | None:
        return self.pattern.search(normalized, pos)

    def found_in(self, normalized: str) -> bool:
        return self.pattern.search(normalized) is not None


def found_any(phrases: Iterable[Phrase], normalized: str) -> bool:
    """Whether one of ``phrases`` is in ``normalized`` text."""
    return any(phrase.found_in(normalized) for phrase in phrases)


def compile_phrase(text: str) -> Phrase | None:
    """The phrase's word pattern; ``None`` if it has no word to match (only punctuation)."""
    tokens: list[str] = []
    for piece in normalize(_TEMPLATE.sub(f" {_WILD} ", text).replace(_WILD, " zzwildzz ")).split(" "):
        token = _WILD if piece == "zzwildzz" else piece
        if token and not (token == _WILD and tokens and tokens[-1] == _WILD):
            tokens.append(token)
    while tokens and tokens[0] == _WILD:
        tokens.pop(0)
    while tokens and tokens[-1] == _WILD:
        tokens.pop()
    if not tokens:
        return None
    pattern = ""
    for token in tokens:
        if token == _WILD:
            pattern += f"(?: [^ ]+){{0,{WILDCARD_WORDS}}}"
        else:
            pattern += (" " if pattern else "") + re.escape(token)
    regex = re.compile(f"(?<![^ ]){pattern}(?![^ ])")
    return Phrase(text, regex, sum(1 for token in tokens if token != _WILD))
