"""Where a prompt may be cut into separately rendered pieces, so its first audio plays sooner.

A prompt is rendered and played piece by piece: the first piece goes on the line while the
rest is synthesized. Pieces end where a speaker pauses anyway (``.``, ``!``, ``?``, ``;``,
``:`` followed by a space), so the cuts are not heard. The same rule applied to a template's
source names its fixed pieces ("I heard:" in ``I heard: {{ heard }}.``), which are rendered
ahead of calls and so come from the cache; only the piece carrying the value is synthesized
while the caller listens.
"""

from __future__ import annotations

import re

_CUT = re.compile(r"(?<=[.!?;:])\s+")
_TEMPLATE_MARK = re.compile(r"\{\{|\{%|\{#")


def speech_chunks(text: str) -> list[str]:
    """``text`` cut at pauses into pieces that render on their own; joined, they are ``text``."""
    clean = re.sub(r"\s+", " ", text).strip()
    return [part for part in _CUT.split(clean) if part] if clean else []


def fixed_chunks(template: str) -> list[str]:
    """The pieces of a template's source that hold no template syntax: text every rendering
    of it starts a piece with, so they can be rendered ahead of calls."""
    return [piece for piece in speech_chunks(template) if not _TEMPLATE_MARK.search(piece)]
