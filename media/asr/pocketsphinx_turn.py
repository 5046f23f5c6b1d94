"""One grammar-mode utterance of a pocketsphinx stream: its audio, the pause check and the final,
both decoded ahead in the caller's trailing silence.

Why ahead and not streamed: a grammar pass normalises with the utterance's own cepstral mean.
Streamed from the call's running mean it lost 5 points at 20 dB and 17 at 10 dB on
``bench/bench_asr.py``; from a mean re-estimated as the utterance doubled, 0.6 and 1.8 (the same
pass with the whole utterance's mean kept batch accuracy: the mean is what matters, docs/asr.md).
The turn only ends after ``media.end_silence_ms`` of silence, though, so the pipeline asks early
in that silence (``media.end_silence_prepare_ms``) for :meth:`GrammarUtterance.prepare` and
holds the rest of the silence back. The pause check and the final then find the audio
unchanged and only read what was decoded: no pass runs between the end-of-turn decision and the
reply. Audio arriving after a prepare (the caller went on) drops what was prepared.

The pause check has three answers. A complete phrase that no longer phrase starts with ends the
turn (the final is that phrase, through the menu's fit check). Speech the garbage loop took
whole, not one word of a phrase in it (off-menu: "what is the weather like"), ends it too, as
out of grammar: waiting out the long hold would only delay the reprompt. No final pass is run
for it: the final grammar's paths are a subset of the check's (no prefixes), the garbage path
among them, so its best path is the same one. A prefix of a phrase ("ten" of "ten in the
morning"), a leading carrier alone ("i'd like to"), garbage beside a phrase word ("tomorrow" and
noise) or a phrase heard without enough confidence holds the turn open: the caller may be
mid-answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Literal

import numpy as np
import numpy.typing as npt

from media.asr.base import FinalResult
from media.asr.grammar import PhraseSet
from media.asr.pocketsphinx_results import GrammarPass, decode_utterance

if TYPE_CHECKING:
    from media.asr.pocketsphinx_engine import PocketsphinxEngine

PauseAnswer = Literal["end", "off_menu", "hold"]
PAD_SOURCE_SAMPLES = 640  # 40 ms at 16 kHz: the silence repeated to pad a decode ahead


@dataclass(frozen=True)
class _Ahead:
    """What :meth:`GrammarUtterance.prepare` decoded, valid while the audio is ``samples`` long."""

    samples: int
    answer: PauseAnswer
    check: FinalResult | None  # the final the check ends the turn with (answers "end", "off_menu")
    check_cmn: str | None  # the cepstral mean that final leaves ("off_menu"; None: keep the call's)
    final: GrammarPass | None  # the final pass, for a flush after the hold (answer "hold")


class GrammarUtterance:
    """The audio of the utterance in progress (16 kHz) and its decodes made ahead."""

    def __init__(self, engine: PocketsphinxEngine, grammar: tuple[PhraseSet, str, str]) -> None:
        self._engine = engine
        self.grammar = grammar
        self._chunks: list[npt.NDArray[np.int16]] = []
        self._samples = 0
        self._ahead: _Ahead | None = None

    @cached_property
    def pause_grammar(self) -> tuple[PhraseSet, str, str]:
        """The check's grammar (phrases and their prefixes), built once per step, not per pause."""
        return self._engine.pause_grammar(self.grammar[0])

    @property
    def empty(self) -> bool:
        return not self._chunks

    def append(self, samples: npt.NDArray[np.int16]) -> None:
        self._chunks.append(samples)
        self._samples += samples.size

    def clear(self) -> None:
        self._chunks = []
        self._samples = 0
        self._ahead = None

    def audio(self, tail: npt.NDArray[np.int16] | None = None) -> npt.NDArray[np.int16]:
        chunks = self._chunks if tail is None or not tail.size else [*self._chunks, tail]
        return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)

    def prepare(self, cmn: str, silence: int, pad: int) -> None:
        """Decode what is buffered now: the pause check and, when that holds the turn open, the
        final pass. The last ``silence`` samples are the caller's silence so
        far; its end is repeated to ``pad`` samples more, the silence the check would have had
        (with 100 ms of silence and no more a short fast "tomorrow" was lost to the garbage loop;
        repeating the start of the silence, where the word still fades, lost it too)."""
        if not self._samples:
            return
        audio = self.audio()
        if pad > 0 and 0 < silence <= audio.size:
            # The end of the silence (the start may still hold the last word's fading tail).
            quiet = audio[-min(silence, PAD_SOURCE_SAMPLES) :]
            audio = np.concatenate([audio, np.resize(quiet, pad)])
        answer, check, check_cmn = self._pause_check(audio, cmn)
        final = self._pass(self.grammar, audio, cmn) if answer == "hold" else None
        self._ahead = _Ahead(self._samples, answer, check, check_cmn, final)

    def _prepared(self) -> _Ahead | None:
        ahead = self._ahead
        return ahead if ahead is not None and ahead.samples == self._samples else None

    def complete_phrase(self, cmn: str) -> tuple[FinalResult, str | None] | None:
        """The final if the pause ends the turn, with the cepstral mean it leaves (None: keep the
        call's); None to hold the turn open."""
        ahead = self._prepared()
        if ahead is not None:
            answer, check, check_cmn = ahead.answer, ahead.check, ahead.check_cmn
        else:
            answer, check, check_cmn = self._pause_check(self.audio(), cmn)
        if answer == "hold" or check is None:
            return None
        return check, check_cmn

    def final(self, tail: npt.NDArray[np.int16], cmn: str) -> tuple[FinalResult, str]:
        """The utterance's final and the mean it leaves. ``tail`` is what the upsampler still
        held: a few ms of the held-back silence after a decode ahead, which then stands."""
        ahead = self._prepared()
        done = ahead.final if ahead is not None else None
        if done is None:
            done = self._pass(self.grammar, self.audio(tail), cmn)
        return self._verified(done), done.cmn

    def _verified(self, done: GrammarPass) -> FinalResult:
        return self._engine.verify(self.grammar[0], done.result, done.fit)

    def _pause_check(
        self, audio: npt.NDArray[np.int16], cmn: str
    ) -> tuple[PauseAnswer, FinalResult | None, str | None]:
        engine = self._engine
        phrase_set = self.grammar[0]
        # Phrases plus their first words ("ten" of "ten in the morning"): a caller who paused
        # mid-phrase matches a prefix instead of being forced onto a whole phrase.
        done = self._pass(self.pause_grammar, audio, cmn)
        result = done.result
        if done.garbage and done.fit is None:  # fit is None: not one word of a phrase was heard
            return "off_menu", result, done.cmn
        if not result.in_grammar or result.confidence < engine.pause_accept:
            return "hold", None, None
        if result.text not in phrase_set.phrases or not phrase_set.ends_turn(result.text):
            return "hold", None, None
        # A whole phrase ends the turn; on a menu it is then the fit check's verdict, as at
        # the final (the same audio is decoded, so waiting for the hold would not change it).
        return "end", engine.verify(phrase_set, result, done.fit), None

    def _pass(
        self, grammar: tuple[PhraseSet, str, str], audio: npt.NDArray[np.int16], cmn: str
    ) -> GrammarPass:
        engine = self._engine
        decoder = engine.grammar_pool.lease()
        try:
            return decode_utterance(engine, decoder, grammar, audio, cmn)
        finally:
            engine.grammar_pool.give_back(decoder)
