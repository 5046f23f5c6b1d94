"""The default recognizer: pocketsphinx 5 with the en-US model bundled in its wheel.

Cost model (measured, see docs/asr.md): loading the acoustic model into a Decoder takes
~10 ms and ~5 MB with a small dictionary, but ~100 ms and ~27 MB with the 130k-word
dictionary, and ~0.4 s with the open-vocabulary language model on top. So the engine parses
the dictionary once into a Python lexicon and keeps two pools of decoders: small grammar
decoders that learn only the words their grammars use, and full open-vocabulary decoders.
A stream leases a decoder for one utterance only, so a process needs as many decoders as
utterances being decoded at the same moment, not one per call.

Grammar mode buffers the utterance and decodes it in one pass when the endpointer calls
``flush``: batch cepstral mean normalisation over the whole utterance recognised far better
than the live estimate on a caller's first words, and a grammar pass over a few seconds of
audio takes ~30-100 ms. Open-vocabulary mode decodes as frames arrive (its search is far
heavier) and emits partial results.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pocketsphinx

from config.errors import MediaError
from config.logs import log_event
from media.asr.audio_input import NoiseFloor, Upsampler, check_frame
from media.asr.base import (
    AsrEngine,
    AsrResult,
    AsrStream,
    Expectation,
    FinalResult,
    PartialResult,
    WordTiming,
)
from media.asr.grammar import AsrGrammarError, PhraseSet, jsgf_grammar
from media.frames import Frame

_LOG = logging.getLogger("media.asr.pocketsphinx")

MODEL_RATE = 16000
FRAMES_PER_SECOND = 100  # pocketsphinx's default -frate
GARBAGE_PREFIX = "g_"
# Short, frequent words whose pronunciations cover most English phones: the loop that absorbs
# speech matching no phrase. Kept small, since each word adds search cost to every frame.
GARBAGE_WORDS = (
    "the", "a", "to", "and", "of", "i", "you", "it", "is", "that", "my", "what",
    "for", "on", "in", "this", "have", "be", "do", "can", "want", "would", "like", "please",
)  # fmt: skip
MAX_GRAMMARS_PER_DECODER = 64
# Cepstral mean of 8 kHz-band speech upsampled to 16 kHz (measured): the live estimate's
# starting point for a call's first open-vocabulary utterance, instead of the model's 16 kHz one.
TELEPHONE_CMN = "47,21,-45,42,-32,2,-5,-10,0,0,0,0,0"


class _DecoderPool:
    """Idle decoders of one kind; ``lease`` creates one when none is idle."""

    def __init__(self, factory: Callable[[], pocketsphinx.Decoder]) -> None:
        self._factory = factory
        self._idle: list[pocketsphinx.Decoder] = []
        self._lock = threading.Lock()
        self.created = 0

    def lease(self) -> pocketsphinx.Decoder:
        with self._lock:
            if self._idle:
                return self._idle.pop()
            self.created += 1
        return self._factory()

    def give_back(self, decoder: pocketsphinx.Decoder) -> None:
        with self._lock:
            self._idle.append(decoder)


class PocketsphinxEngine(AsrEngine):
    """Loads the model files once; :meth:`open_stream` is cheap and thread-safe."""

    name = "pocketsphinx"

    def __init__(
        self,
        model_dir: str | Path | None = None,
        *,
        garbage_weight: float | None = 1e-25,
        partial_every_frames: int = 10,
        noise_floor: float = 150.0,
        strict_accept: float = 0.85,
    ) -> None:
        root = Path(model_dir) if model_dir else Path(pocketsphinx.get_model_path())
        self.hmm_dir = root / "en-us" / "en-us"
        self.dict_path = root / "en-us" / "cmudict-en-us.dict"
        self.lm_path = root / "en-us" / "en-us.lm.bin"
        for path in (self.hmm_dir, self.dict_path, self.lm_path):
            if not path.exists():
                raise MediaError(f"pocketsphinx: model file {path} is missing (reinstall 'pocketsphinx')")
        # Grammar mode decodes twice when it must. First against the phrases plus a loop of
        # common words (the out-of-grammar path); it rejects "something else" reliably but
        # sometimes swallows a real phrase. If it finds no phrase, a phrases-only pass gets
        # the last word: its phrase is taken when every word's posterior is >= strict_accept.
        # garbage_weight None skips the first pass (phrases only, no out-of-grammar path).
        self.garbage_weight = garbage_weight
        self.noise_floor = noise_floor
        self.strict_accept = strict_accept
        self.partial_every_frames = max(1, partial_every_frames)
        self.lexicon = _read_lexicon(self.dict_path)
        # The grammar decoders start from a dictionary of garbage words only; phrase words
        # are added from the lexicon as grammars need them.
        self._workdir = tempfile.TemporaryDirectory(prefix="ivr-pocketsphinx-")
        self._garbage_dict = Path(self._workdir.name) / "garbage.dict"
        self._garbage_dict.write_text(
            "".join(f"{GARBAGE_PREFIX}{word} {self.lexicon[word]}\n" for word in GARBAGE_WORDS),
            encoding="utf-8",
        )
        self.grammar_pool = _DecoderPool(self._new_grammar_decoder)
        self.open_pool = _DecoderPool(self._new_open_decoder)
        # Per decoder (pinned here, so ids stay unique): the grammars and words it has learnt.
        self._learnt: dict[int, tuple[pocketsphinx.Decoder, OrderedDict[str, None], set[str]]] = {}
        self._lock = threading.Lock()

    def _config(self, **values: Any) -> pocketsphinx.Config:
        # Dither: digital silence (all-zero samples) otherwise derails the front end.
        return pocketsphinx.Config(
            hmm=str(self.hmm_dir), loglevel="FATAL", samprate=MODEL_RATE, dither=True, **values
        )

    def _new_grammar_decoder(self) -> pocketsphinx.Decoder:
        # No lattice best-path pass: over the garbage loop it cost seconds, and one pass suffices.
        return pocketsphinx.Decoder(self._config(dict=str(self._garbage_dict), lm=None, bestpath=False))

    def _new_open_decoder(self) -> pocketsphinx.Decoder:
        return pocketsphinx.Decoder(self._config(dict=str(self.dict_path), lm=str(self.lm_path)))

    def unknown_words(self, phrases: tuple[str, ...]) -> list[str]:
        """Words of ``phrases`` the dictionary cannot pronounce (check flows at load time)."""
        return PhraseSet.build(phrases).unknown_words(self.lexicon)

    def strict_grammar(self, phrase_set: PhraseSet) -> tuple[str, str]:
        """Search name and JSGF text of the phrases-only grammar for ``phrase_set``."""
        text = jsgf_grammar(phrase_set)
        return "s" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], text

    def compile(self, phrases: tuple[str, ...]) -> tuple[PhraseSet, str, str]:
        """The phrase set, search name and JSGF text for ``phrases``; errors name bad words."""
        phrase_set = PhraseSet.build(phrases)
        unknown = phrase_set.unknown_words(self.lexicon)
        if unknown:
            raise AsrGrammarError(
                f"pocketsphinx grammar: no pronunciation for {', '.join(repr(w) for w in unknown)} "
                f"in {self.dict_path.name}; rephrase or add them to the dictionary"
            )
        if self.garbage_weight is None:
            text = jsgf_grammar(phrase_set)
        else:
            garbage = tuple(GARBAGE_PREFIX + word for word in GARBAGE_WORDS)
            text = jsgf_grammar(phrase_set, garbage, self.garbage_weight)
        name = "g" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
        return phrase_set, name, text

    def activate_grammar(
        self, decoder: pocketsphinx.Decoder, phrase_set: PhraseSet, name: str, text: str
    ) -> None:
        """Make ``name`` the decoder's search, teaching it missing words first."""
        with self._lock:
            _, grammars, words = self._learnt.setdefault(id(decoder), (decoder, OrderedDict(), set()))
        if name in grammars:
            grammars.move_to_end(name)
        else:
            missing = [word for word in phrase_set.vocabulary if word not in words]
            for index, word in enumerate(missing):
                decoder.add_word(word, self.lexicon[word], index == len(missing) - 1)
                words.add(word)
            decoder.add_jsgf_string(name, text)
            grammars[name] = None
            while len(grammars) > MAX_GRAMMARS_PER_DECODER:
                old, _ = grammars.popitem(last=False)
                decoder.remove_search(old)
        decoder.activate_search(name)

    def open_stream(self, expectation: Expectation) -> PocketsphinxStream:
        return PocketsphinxStream(self, expectation)


def _read_lexicon(path: Path) -> dict[str, str]:
    """First pronunciation of each word; alternates (``word(2)``) are skipped."""
    lexicon: dict[str, str] = {}
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            word, _, phones = line.strip().partition(" ")
            if word and phones and not word.endswith(")"):
                lexicon.setdefault(word, phones.strip())
    return lexicon


class PocketsphinxStream(AsrStream):
    """One call's recognizer; used from one thread at a time."""

    def __init__(self, engine: PocketsphinxEngine, expectation: Expectation) -> None:
        self._engine = engine
        self._upsampler = Upsampler(MODEL_RATE)
        self._floor = NoiseFloor(engine.noise_floor)
        self._decoder: pocketsphinx.Decoder | None = None  # open mode, mid-utterance
        self._buffer: list[npt.NDArray[np.int16]] = []  # grammar mode, mid-utterance
        self._cmn = TELEPHONE_CMN
        self._frames = 0
        self._last_partial = ""
        self._grammar: tuple[PhraseSet, str, str] | None = None
        self.set_expectation(expectation)

    def set_expectation(self, expectation: Expectation) -> None:
        """Applies from the next utterance; grammar errors are raised here, not mid-call."""
        self.reset()
        self._grammar = self._engine.compile(expectation.phrases) if expectation.grammar_mode else None

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        check_frame(frame, "pocketsphinx stream")
        samples = self._upsampler.push(self._floor.apply(frame))
        self._frames += 1
        if self._grammar is not None:
            if samples.size:
                self._buffer.append(samples)
            return []
        decoder = self._decoder or self._start_open()
        if samples.size:
            decoder.process_raw(samples.tobytes(), False, False)
        if self._frames % self._engine.partial_every_frames:
            return []
        hyp = decoder.hyp()
        text = " ".join(_spoken(hyp.hypstr.split())) if hyp is not None else ""
        if text and text != self._last_partial:
            self._last_partial = text
            return [PartialResult(text)]
        return []

    def _start_open(self) -> pocketsphinx.Decoder:
        decoder = self._engine.open_pool.lease()
        try:
            decoder.activate_search()
            # Each caller's line has its own channel: carry this call's cepstral mean along.
            decoder.set_cmn(self._cmn)
            decoder.start_utt()
        except Exception:
            self._engine.open_pool.give_back(decoder)
            raise
        self._decoder = decoder
        return decoder

    def flush(self) -> FinalResult:
        grammar = self._grammar
        if self._frames == 0:
            return FinalResult("", 0.0, (), in_grammar=grammar is None)
        tail = self._upsampler.drain()
        result = self._decode_grammar(grammar, tail) if grammar is not None else self._finish_open(tail)
        log_event(
            "asr.final", logger=_LOG, engine="pocketsphinx", mode="grammar" if grammar else "open",
            in_grammar=result.in_grammar, confidence=round(result.confidence, 3), words=len(result.words),
        )  # fmt: skip
        return result

    def _decode_grammar(
        self, grammar: tuple[PhraseSet, str, str], tail: npt.NDArray[np.int16]
    ) -> FinalResult:
        audio = np.concatenate([*self._buffer, tail])
        self._buffer = []
        self._frames = 0
        engine = self._engine
        phrase_set = grammar[0]
        decoder = engine.grammar_pool.lease()
        try:
            result = _decode_once(engine, decoder, grammar, audio)
            if result.in_grammar or engine.garbage_weight is None:
                return result
            strict = _decode_once(engine, decoder, (phrase_set, *engine.strict_grammar(phrase_set)), audio)
            return strict if strict.in_grammar and strict.confidence >= engine.strict_accept else result
        finally:
            engine.grammar_pool.give_back(decoder)

    def _finish_open(self, tail: npt.NDArray[np.int16]) -> FinalResult:
        decoder = self._decoder or self._start_open()
        try:
            if tail.size:
                decoder.process_raw(tail.tobytes(), False, False)
            decoder.end_utt()
            self._cmn = decoder.get_cmn(False)
            return _result(decoder, None)
        finally:
            self._release()

    def reset(self) -> None:
        decoder = self._decoder
        if decoder is not None:
            try:
                decoder.end_utt()
            finally:
                self._release()
        self._buffer = []
        self._upsampler.reset()
        self._frames = 0
        self._last_partial = ""

    def _release(self) -> None:
        if self._decoder is not None:
            self._engine.open_pool.give_back(self._decoder)
        self._decoder = None
        self._frames = 0
        self._last_partial = ""

    def close(self) -> None:
        self.reset()


def _decode_once(
    engine: PocketsphinxEngine,
    decoder: pocketsphinx.Decoder,
    grammar: tuple[PhraseSet, str, str],
    audio: npt.NDArray[np.int16],
) -> FinalResult:
    engine.activate_grammar(decoder, *grammar)
    decoder.start_utt()
    decoder.process_raw(audio.tobytes(), False, True)  # whole utterance: batch CMN
    decoder.end_utt()
    return _result(decoder, grammar[0])


def _result(decoder: pocketsphinx.Decoder, phrase_set: PhraseSet | None) -> FinalResult:
    hyp = decoder.hyp()
    if hyp is None:  # e.g. a grammar search that never reached its final state
        return FinalResult("", 0.0, (), in_grammar=phrase_set is None)
    segments = [seg for seg in decoder.seg() or () if _is_word(seg.word)]
    garbage = any(seg.word.startswith(GARBAGE_PREFIX) for seg in segments)
    words = tuple(
        WordTiming(
            _base_word(seg.word).removeprefix(GARBAGE_PREFIX),
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
    confidence = min((word.confidence for word in words), default=0.0)
    phrase = None if garbage else phrase_set.match(word.word for word in words)
    if phrase is None:
        return FinalResult(text, confidence, words, in_grammar=False)
    return FinalResult(phrase, confidence, words, in_grammar=True)


def _base_word(word: str) -> str:
    """``word(2)`` (an alternate pronunciation) is ``word``."""
    return word.split("(", 1)[0] if word.endswith(")") else word


def _is_word(word: str) -> bool:
    """Silence, noise and sentence markers are not words the caller said."""
    return bool(word) and word[0] not in "<[+(" and word != "</s>"


def _spoken(words: list[str]) -> list[str]:
    """Words as a transcript shows them: garbage words lose their marker prefix."""
    return [word.removeprefix(GARBAGE_PREFIX) for word in words if _is_word(word)]
