"""The default recognizer: pocketsphinx 5 with the en-US model bundled in its wheel.

Cost model (measured, see docs/asr.md): loading the acoustic model into a Decoder takes
~10 ms and ~5 MB with a small dictionary, but ~100 ms and ~27 MB with the 130k-word
dictionary, and ~0.4 s with the open-vocabulary language model on top. So the engine parses
the dictionary once into a Python lexicon and keeps two pools of decoders: small grammar
decoders that learn only the words their grammars use, and full open-vocabulary decoders.
A stream leases a decoder for one utterance only, so a process needs as many decoders as
utterances being decoded at the same moment, not one per call.

Grammar mode buffers the utterance and decodes it in one pass (a grammar pass over a few seconds
of audio takes ~10-80 ms), ahead, early in the caller's trailing silence, when the pipeline asks
for it (:mod:`media.asr.pocketsphinx_turn`), else at the pause check and at ``flush``. Both modes start each
utterance from the call's own cepstral mean (its previous utterance's, first a telephone
estimate): a pooled decoder would otherwise carry the last call's line into this one, and a
fresh decoder's 16 kHz default fitted the first utterance clearly worse. Open-vocabulary mode
decodes as frames arrive (its search is far heavier) and emits partial results.
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
)
from media.asr.grammar import CARRIERS_AFTER, CARRIERS_BEFORE, AsrGrammarError, PhraseSet, jsgf_grammar
from media.asr.pocketsphinx_results import (
    CARRIER_PREFIX,
    CONFIRM_CONFIDENCE,
    CONFIRM_FLOOR,
    GARBAGE_PREFIX,
    GARBAGE_WORDS,
    AcousticFit,
    FitFloor,
    Verdict,
    judged,
    marked,
    result_of,
    spoken,
    verdict,
)
from media.asr.pocketsphinx_turn import GrammarUtterance
from media.frames import Frame

_LOG = logging.getLogger("media.asr.pocketsphinx")

MODEL_RATE = 16000
MAX_GRAMMARS_PER_DECODER = 64
# Cepstral mean of 8 kHz-band speech upsampled to 16 kHz (measured): the live estimate's
# starting point for a call's first open-vocabulary utterance, instead of the model's 16 kHz one.
TELEPHONE_CMN = "47,21,-45,42,-32,2,-5,-10,0,0,0,0,0"
# The dither's seed: the same audio decoded in the same order gives the same words (unseeded,
# a word near a decision flipped from run to run, and so did tests).
DITHER_SEED = 1


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
        fit_floor: FitFloor | None = FitFloor(),  # noqa: B008 (frozen, shared safely)
        confirm_floor: FitFloor | None = CONFIRM_FLOOR,
        confirm_confidence: float = CONFIRM_CONFIDENCE,
        pause_accept: float = 0.5,
        carriers: bool = True,
    ) -> None:
        root = Path(model_dir) if model_dir else Path(pocketsphinx.get_model_path())
        self.hmm_dir = root / "en-us" / "en-us"
        self.dict_path = root / "en-us" / "cmudict-en-us.dict"
        self.lm_path = root / "en-us" / "en-us.lm.bin"
        for path in (self.hmm_dir, self.dict_path, self.lm_path):
            if not path.exists():
                raise MediaError(f"pocketsphinx: model file {path} is missing (reinstall 'pocketsphinx')")
        # Grammar mode decodes once (see docs/asr.md), against the phrases, wrapped in optional
        # carrier phrases on a menu, plus a weighted-down loop of common words (the
        # out-of-grammar path). On a menu a phrase found is then verified: its words must fit
        # the audio at least as closely as fit_floor says, else the utterance is out of
        # grammar (a reprompt, never a guess); None takes every phrase found. Between
        # fit_floor and the looser confirm_floor a phrase is proposed: its confidence capped at
        # confirm_confidence, inside a flow's read-back band ("I think you said ...").
        # garbage_weight None: phrases only, no out-of-grammar path at all.
        self.garbage_weight = garbage_weight
        self.fit_floor = fit_floor
        self.confirm_floor = confirm_floor
        if not 0.0 <= confirm_confidence <= 1.0:
            raise MediaError(f"pocketsphinx: confirm_confidence {confirm_confidence} is not within 0..1")
        self.confirm_confidence = confirm_confidence
        self.noise_floor = noise_floor
        # At a pause, a phrase ends the turn only when its weakest word is at least this sure;
        # otherwise the caller may be mid-phrase and the turn waits for the longer silence.
        self.pause_accept = pause_accept
        self.partial_every_frames = max(1, partial_every_frames)
        self.lexicon = _read_lexicon(self.dict_path)
        # The grammar decoders start from a dictionary of garbage words only; phrase words
        # are added from the lexicon as grammars need them.
        self._workdir = tempfile.TemporaryDirectory(prefix="ivr-pocketsphinx-")
        self._garbage_dict = Path(self._workdir.name) / "garbage.dict"
        carrier_words = dict.fromkeys(w for p in CARRIERS_BEFORE + CARRIERS_AFTER for w in p.split())
        self._garbage_dict.write_text(
            "".join(f"{GARBAGE_PREFIX}{word} {self.lexicon[word]}\n" for word in GARBAGE_WORDS)
            + "".join(f"{CARRIER_PREFIX}{word} {self.lexicon[word]}\n" for word in carrier_words),
            encoding="utf-8",
        )
        self.carriers: tuple[tuple[str, ...], tuple[str, ...]] = (
            (marked(CARRIERS_BEFORE), marked(CARRIERS_AFTER)) if carriers else ((), ())
        )
        self.grammar_pool = _DecoderPool(self._new_grammar_decoder)
        self.open_pool = _DecoderPool(self._new_open_decoder)
        # Per decoder (pinned here, so ids stay unique): the grammars and words it has learnt.
        self._learnt: dict[int, tuple[pocketsphinx.Decoder, OrderedDict[str, None], set[str]]] = {}
        self._lock = threading.Lock()

    def _config(self, **values: Any) -> pocketsphinx.Config:
        # Dither: digital silence (all-zero samples) otherwise derails the front end.
        return pocketsphinx.Config(
            hmm=str(self.hmm_dir),
            loglevel="FATAL",
            samprate=MODEL_RATE,
            dither=True,
            seed=DITHER_SEED,
            **values,
        )

    def _new_grammar_decoder(self) -> pocketsphinx.Decoder:
        # No lattice best-path pass: over the garbage loop it cost seconds, and one pass suffices.
        return pocketsphinx.Decoder(self._config(dict=str(self._garbage_dict), lm=None, bestpath=False))

    def _new_open_decoder(self) -> pocketsphinx.Decoder:
        return pocketsphinx.Decoder(self._config(dict=str(self.dict_path), lm=str(self.lm_path)))

    def unknown_words(self, phrases: tuple[str, ...]) -> list[str]:
        """Words of ``phrases`` the dictionary cannot pronounce (check flows at load time)."""
        return PhraseSet.build(phrases).unknown_words(self.lexicon)

    def pause_grammar(self, phrase_set: PhraseSet) -> tuple[PhraseSet, str, str]:
        """The grammar a pause is checked with: the phrases, every word prefix of them, garbage."""
        extended = phrase_set.with_prefixes()
        garbage = tuple(GARBAGE_PREFIX + word for word in GARBAGE_WORDS)
        carriers = self.carriers_for(phrase_set)
        text = jsgf_grammar(
            extended, garbage, self.garbage_weight or 1e-25, carriers=carriers, carriers_alone=True
        )
        return extended, "p" + hashlib.sha256(text.encode("utf-8")).hexdigest()[:16], text

    def carriers_for(self, phrase_set: PhraseSet) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Carrier phrases wrap a menu's phrases only: around single-word answers (digits,
        yes/no) they cost more accuracy than they win (measured, docs/asr.md)."""
        return self.carriers if phrase_set.is_menu else ((), ())

    def compile(self, phrases: tuple[str, ...]) -> tuple[PhraseSet, str, str]:
        """The phrase set, search name and JSGF text for ``phrases``; errors name bad words."""
        phrase_set = PhraseSet.build(phrases)
        unknown = phrase_set.unknown_words(self.lexicon)
        if unknown:
            raise AsrGrammarError(
                f"pocketsphinx grammar: no pronunciation for {', '.join(repr(w) for w in unknown)} "
                f"in {self.dict_path.name}; rephrase or add them to the dictionary"
            )
        carriers = self.carriers_for(phrase_set)
        if self.garbage_weight is None:
            text = jsgf_grammar(phrase_set, carriers=carriers)
        else:
            garbage = tuple(GARBAGE_PREFIX + word for word in GARBAGE_WORDS)
            text = jsgf_grammar(phrase_set, garbage, self.garbage_weight, carriers=carriers)
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

    def verified(self, phrase_set: PhraseSet, fit: AcousticFit | None) -> Verdict:
        """What becomes of a phrase found on ``phrase_set`` (see :func:`verdict`): always taken
        off a menu (single-word answers such as digits and yes/no lost more than they won,
        docs/asr.md), else by how closely its words fit the audio."""
        if not phrase_set.is_menu or self.garbage_weight is None or self.fit_floor is None:
            return "accept"
        return verdict(self.fit_floor, self.confirm_floor, fit)

    def verify(self, phrase_set: PhraseSet, result: FinalResult, fit: AcousticFit | None) -> FinalResult:
        """``result`` as it is, with a read-back confidence when it is only proposed, or out of
        grammar (the words heard kept) when it fails the check."""
        decision = self.verified(phrase_set, fit) if result.in_grammar else "accept"
        if decision != "accept":
            log_event("asr.proposed" if decision == "confirm" else "asr.rejected", logger=_LOG,
                      engine="pocketsphinx", reason="fit")  # fmt: skip
        return judged(result, decision, self.confirm_confidence)

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
    """One call's recognizer; used from one thread at a time.

    Open mode decodes as frames arrive on a decoder leased at the utterance's first frame.
    Grammar mode keeps the utterance's audio and decodes it in one pass (batch cepstral mean),
    ahead at :meth:`prepare` when the pipeline asks, else at the pause check and at
    :meth:`flush` (:mod:`media.asr.pocketsphinx_turn` says why not streamed)."""

    def __init__(self, engine: PocketsphinxEngine, expectation: Expectation) -> None:
        self._engine = engine
        self._upsampler = Upsampler(MODEL_RATE)
        self._floor = NoiseFloor(engine.noise_floor)
        self._decoder: pocketsphinx.Decoder | None = None  # open mode, mid-utterance
        self._utterance: GrammarUtterance | None = None  # grammar mode
        self._cmn = TELEPHONE_CMN
        self._frames = 0
        self._last_partial = ""
        self.set_expectation(expectation)

    def set_expectation(self, expectation: Expectation) -> None:
        """Applies from the next utterance; grammar errors are raised here, not mid-call."""
        self.reset()
        if expectation.grammar_mode:
            self._utterance = GrammarUtterance(self._engine, self._engine.compile(expectation.phrases))
        else:
            self._utterance = None

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        check_frame(frame, "pocketsphinx stream")
        samples = self._upsampler.push(self._floor.apply(frame))
        self._frames += 1
        if self._utterance is not None:
            self._utterance.append(samples)
            return []
        decoder = self._decoder or self._start_open()
        if samples.size:
            decoder.process_raw(samples.tobytes(), False, False)
        if self._frames % self._engine.partial_every_frames:
            return []
        hyp = decoder.hyp()
        text = " ".join(spoken(hyp.hypstr.split())) if hyp is not None else ""
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

    def prepare(self, silence_ms: int, pad_ms: int) -> None:
        """Grammar mode: decode what is buffered now, for a check or final with no audio since."""
        if self._utterance is not None:
            self._utterance.prepare(self._cmn, silence_ms * MODEL_RATE // 1000, pad_ms * MODEL_RATE // 1000)

    def flush(self) -> FinalResult:
        utterance = self._utterance
        if self._frames == 0:
            return FinalResult("", 0.0, (), in_grammar=utterance is None)
        tail = self._upsampler.drain()
        if utterance is None:
            result = self._finish_open(tail)
        else:
            result, self._cmn = utterance.final(tail, self._cmn)  # this call's line, for the next
            utterance.clear()
            self._frames = 0
        log_event(
            "asr.final", logger=_LOG, engine="pocketsphinx", mode="open" if utterance is None else "grammar",
            in_grammar=result.in_grammar, confidence=round(result.confidence, 3), words=len(result.words),
        )  # fmt: skip
        return result

    def complete_phrase(self) -> FinalResult | None:
        """Grammar mode: the final if the audio so far ends the turn (a complete phrase that is
        no prefix of a longer one, every word sure enough, or speech off the menu), else None
        (the utterance goes on; what is buffered is kept)."""
        utterance = self._utterance
        if utterance is None or utterance.empty:
            return None
        decided = utterance.complete_phrase(self._cmn)
        if decided is None:
            return None
        result, cmn = decided
        if cmn is not None:
            self._cmn = cmn
        return result

    def _finish_open(self, tail: npt.NDArray[np.int16]) -> FinalResult:
        decoder = self._decoder or self._start_open()
        try:
            if tail.size:
                decoder.process_raw(tail.tobytes(), False, False)
            decoder.end_utt()
            self._cmn = decoder.get_cmn(False)
            return result_of(decoder, None)
        finally:
            self._release()

    def reset(self) -> None:
        decoder = self._decoder
        if decoder is not None:
            try:
                decoder.end_utt()
            finally:
                self._release()
        if self._utterance is not None:
            self._utterance.clear()
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
