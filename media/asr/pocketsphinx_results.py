"""Turning a pocketsphinx search into our results: one grammar pass over a whole utterance,
the garbage loop's score that verifies it, and the words a caller said (marker prefixes off).

The dictionary spells two kinds of extra words with a prefix: the garbage loop's common words
(``g_``: speech matching no phrase) and carrier words (``c_``: "I'd like to", "please" around a
phrase: said, but not the answer). Neither is ever the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pocketsphinx

from media.asr.base import FinalResult, WordTiming
from media.asr.grammar import PhraseSet

if TYPE_CHECKING:
    from media.asr.pocketsphinx_engine import PocketsphinxEngine

FRAMES_PER_SECOND = 100  # pocketsphinx's default -frate
GARBAGE_PREFIX = "g_"
CARRIER_PREFIX = "c_"  # "i'd like to", "please" around a phrase: said, but not the answer
# Short, frequent words whose pronunciations cover most English phones: the loop that absorbs
# speech matching no phrase. Kept small, since each word adds search cost to every frame.
GARBAGE_WORDS = (
    "the", "a", "to", "and", "of", "i", "you", "it", "is", "that", "my", "what",
    "for", "on", "in", "this", "have", "be", "do", "can", "want", "would", "like", "please",
)  # fmt: skip


def decode_once(
    engine: PocketsphinxEngine,
    decoder: pocketsphinx.Decoder,
    grammar: tuple[PhraseSet, str, str],
    audio: npt.NDArray[np.int16],
) -> FinalResult:
    return decode_scored(engine, decoder, grammar, audio)[0]


def decode_scored(
    engine: PocketsphinxEngine,
    decoder: pocketsphinx.Decoder,
    grammar: tuple[PhraseSet, str, str],
    audio: npt.NDArray[np.int16],
) -> tuple[FinalResult, float]:
    """The result and the best path's recognition score (higher explains the audio better)."""
    engine.activate_grammar(decoder, *grammar)
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), False, True)  # whole utterance: batch CMN
    decoder.end_utt()
    hyp = decoder.hyp()
    return result_of(decoder, grammar[0]), float(hyp.best_score) if hyp is not None else 0.0


def loop_score(
    engine: PocketsphinxEngine,
    decoder: pocketsphinx.Decoder,
    phrase_set: PhraseSet,
    audio: npt.NDArray[np.int16],
) -> float:
    """How well the free loop of common words alone explains ``audio``: the verification's yardstick."""
    garbage = " | ".join(GARBAGE_PREFIX + word for word in GARBAGE_WORDS)
    text = f"#JSGF V1.0;\ngrammar loop;\npublic <utterance> = <filler>+;\n<filler> = {garbage};\n"
    _, score = decode_scored(engine, decoder, (phrase_set, "loop", text), audio)
    return score


def result_of(decoder: pocketsphinx.Decoder, phrase_set: PhraseSet | None) -> FinalResult:
    hyp = decoder.hyp()
    if hyp is None:  # e.g. a grammar search that never reached its final state
        return FinalResult("", 0.0, (), in_grammar=phrase_set is None)
    segments = [seg for seg in decoder.seg() or () if is_word(seg.word)]
    garbage = any(seg.word.startswith(GARBAGE_PREFIX) for seg in segments)
    said = [base_word(seg.word) for seg in segments]
    words = tuple(
        WordTiming(
            base_word(seg.word).removeprefix(GARBAGE_PREFIX).removeprefix(CARRIER_PREFIX),
            seg.start_frame / FRAMES_PER_SECOND,
            (seg.end_frame + 1) / FRAMES_PER_SECOND,
            min(1.0, max(0.0, float(seg.prob))),
        )
        for seg in segments
    )
    confidence = min(1.0, max(0.0, float(hyp.prob)))
    text = " ".join(word.word for word in words)
    if phrase_set is None:
        return FinalResult(text, confidence, words)
    # A grammar search's utterance posterior is always 1; its weakest word says how sure it is.
    # Carrier words ("please") are kept in the words but are not the answer: neither matched
    # nor counted in the confidence.
    key = [(w, word) for w, word in zip(said, words, strict=True) if not w.startswith(CARRIER_PREFIX)]
    confidence = min((word.confidence for _, word in key), default=0.0)
    phrase = None if garbage or not key else phrase_set.match(word.word for _, word in key)
    if phrase is None:
        return FinalResult(text, confidence, words, in_grammar=False)
    return FinalResult(phrase, confidence, words, in_grammar=True)


def marked(carriers: tuple[str, ...]) -> tuple[str, ...]:
    """Carrier phrases spelled with the dictionary's carrier marker on every word."""
    return tuple(" ".join(CARRIER_PREFIX + word for word in phrase.split()) for phrase in carriers)


def base_word(word: str) -> str:
    """``word(2)`` (an alternate pronunciation) is ``word``."""
    return word.split("(", 1)[0] if word.endswith(")") else word


def is_word(word: str) -> bool:
    """Silence, noise and sentence markers are not words the caller said."""
    return bool(word) and word[0] not in "<[+(" and word != "</s>"


def spoken(words: list[str]) -> list[str]:
    """Words as a transcript shows them: garbage words lose their marker prefix."""
    return [word.removeprefix(GARBAGE_PREFIX).removeprefix(CARRIER_PREFIX) for word in words if is_word(word)]
