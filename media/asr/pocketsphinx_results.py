"""Turning a pocketsphinx search into our results: one grammar pass over a whole utterance,
how well its words fit the audio (what verifies a menu answer), and the words a caller said
(marker prefixes off).

The dictionary spells two kinds of extra words with a prefix: the garbage loop's common words
(``g_``: speech matching no phrase) and carrier words (``c_``: "I'd like to", "please" around a
phrase: said, but not the answer). Neither is ever the answer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

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


@dataclass(frozen=True)
class AcousticFit:
    """How closely a grammar path's words fit the audio: the mean per-frame acoustic score of
    pocketsphinx's segments (ln of ``Segment.ascore`` x 1000). Each frame is scored against the
    best-scoring senone of that frame, so 0 is a perfect fit and the number says how far the
    words had to be bent to cover the audio, whatever else the grammar offered."""

    key: float  # the answer's own words (no carrier, no garbage word)
    spoken: float  # every word of the path, carriers included
    key_share: float  # the answer's frames / all word frames: carriers may not be most of it


@dataclass(frozen=True)
class FitFloor:
    """The least :class:`AcousticFit` a menu answer needs to be taken (else a reprompt).

    Chosen on the tuning set of ``bench/intent_set.py`` (docs/asr.md): an off-menu sentence that
    a grammar forces onto a phrase fits it clearly worse than a phrase really said, and a
    sentence that is mostly carrier words ("I would like to order a pizza" as "I would like
    to" + "help") leaves the answer a small share of the speech."""

    key: float = -4.25
    spoken: float = -3.625
    key_share: float = 0.3

    def accepts(self, fit: AcousticFit | None) -> bool:
        return (
            fit is not None
            and fit.key >= self.key
            and fit.spoken >= self.spoken
            and fit.key_share >= self.key_share
        )


# A phrase below the accept floor but within this one is proposed, not taken: its confidence is
# capped inside the flow's read-back band, so the flow asks "I think you said ..." instead of
# reprompting. Chosen on the tuning set (docs/asr.md): most right answers turned into read-backs
# with at most 2 wrong intents acted on and 2 wrong ones read back out of 510.
CONFIRM_FLOOR = FitFloor(key=-4.375, spoken=-3.75, key_share=0.4)
# Above a flow's default reject_below (0.15), below its default confirm_below (0.5).
CONFIRM_CONFIDENCE = 0.3
Verdict = Literal["accept", "confirm", "reject"]


def verdict(accept: FitFloor, confirm: FitFloor | None, fit: AcousticFit | None) -> Verdict:
    """``"accept"`` (take the phrase), ``"confirm"`` (propose it for a read-back) or
    ``"reject"`` (out of grammar: a reprompt)."""
    if accept.accepts(fit):
        return "accept"
    return "confirm" if confirm is not None and confirm.accepts(fit) else "reject"


def judged(result: FinalResult, decision: Verdict, cap: float) -> FinalResult:
    """``result`` as the verdict leaves it: as it is, proposed (confidence at most ``cap``) or
    out of grammar (the words heard kept, so logs and transcripts still show them)."""
    if decision == "accept":
        return result
    if decision == "confirm":
        return FinalResult(result.text, min(result.confidence, cap), result.words, in_grammar=True)
    words = " ".join(word.word for word in result.words)
    return FinalResult(words, result.confidence, result.words, in_grammar=False)


@dataclass(frozen=True)
class GrammarPass:
    """One grammar pass over an utterance: what it found, how well its words fit the audio,
    whether the out-of-grammar loop took part, and the utterance's cepstral mean after it."""

    result: FinalResult
    fit: AcousticFit | None
    garbage: bool
    cmn: str


def decode_utterance(
    engine: PocketsphinxEngine,
    decoder: pocketsphinx.Decoder,
    grammar: tuple[PhraseSet, str, str],
    audio: npt.NDArray[np.int16],
    cmn: str,
) -> GrammarPass:
    """One pass of ``grammar`` over a whole utterance.

    ``cmn`` is the cepstral mean the pass starts from (the call's line, see the engine): a
    pooled decoder would otherwise start from whichever call it decoded last."""
    engine.activate_grammar(decoder, *grammar)
    decoder.set_cmn(cmn)
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), False, True)  # whole utterance: batch CMN
    decoder.end_utt()
    garbage = any(seg.word.startswith(GARBAGE_PREFIX) for seg in decoder.seg() or ())
    return GrammarPass(result_of(decoder, grammar[0]), fit_of(decoder), garbage, decoder.get_cmn(False))


def fit_of(decoder: pocketsphinx.Decoder) -> AcousticFit | None:
    """The words' :class:`AcousticFit` after ``end_utt``; None without a path or answer words."""
    if decoder.hyp() is None:
        return None
    key_score = key_frames = score = frames = 0.0
    for seg in decoder.seg() or ():
        if not is_word(seg.word):
            continue
        n = seg.end_frame - seg.start_frame + 1
        log_score = math.log(seg.ascore) if seg.ascore > 0 else -1e9
        score += log_score
        frames += n
        if not seg.word.startswith((CARRIER_PREFIX, GARBAGE_PREFIX)):
            key_score += log_score
            key_frames += n
    if not key_frames:
        return None
    return AcousticFit(1000 * key_score / key_frames, 1000 * score / frames, key_frames / frames)


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
