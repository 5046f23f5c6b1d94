"""Vosk (Kaldi) recognizer over any unpacked vosk model directory (``media.vosk_model_dir``).

Small vosk models ship a lookahead graph (``graph/HCLr.fst`` + ``graph/Gr.fst``) and accept a
phrase list per recognizer, which is how a flow step's phrases become a grammar. Big models
ship a static ``HCLG.fst`` and cannot: for them the engine decodes freely and then checks
whether the words are one of the step's phrases.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import vosk

from config.errors import MediaError
from config.logs import log_event
from media.asr.audio_input import check_frame
from media.asr.base import (
    AsrEngine,
    AsrResult,
    AsrStream,
    Expectation,
    FinalResult,
    PartialResult,
    WordTiming,
)
from media.asr.grammar import PhraseSet
from media.frames import FRAME_SAMPLES, SAMPLE_RATE, Frame

_LOG = logging.getLogger("media.asr.vosk")
UNKNOWN_WORD = "[unk]"
FRAME_SECONDS = FRAME_SAMPLES / SAMPLE_RATE


class VoskEngine(AsrEngine):
    """One loaded vosk model shared by every stream of the process."""

    name = "vosk"

    def __init__(self, model_dir: str | Path, *, partial_every_frames: int = 10, setting: str = "") -> None:
        where = f"{setting}: " if setting else ""
        path = Path(model_dir).expanduser()
        if not str(model_dir).strip():
            raise MediaError(f"{where}vosk needs a model directory; set it to an unpacked vosk model")
        if not path.is_dir():
            raise MediaError(f"{where}vosk model directory {path} does not exist")
        if not (path / "am" / "final.mdl").is_file() and not (path / "final.mdl").is_file():
            raise MediaError(
                f"{where}{path} is not a vosk model directory (no am/final.mdl); "
                "point it at the unpacked model, e.g. .../vosk-model-small-en-us-0.15"
            )
        self.model_dir = path.resolve()
        graph = path / "graph"
        self.supports_grammar = (graph / "HCLr.fst").is_file() and (graph / "Gr.fst").is_file()
        self.partial_every_frames = max(1, partial_every_frames)
        vosk.SetLogLevel(-1)
        try:
            self.model = vosk.Model(str(self.model_dir))
        except Exception as exc:  # vosk raises a bare Exception("Failed to create a model")
            raise MediaError(f"{where}vosk could not load the model in {self.model_dir}: {exc}") from exc
        # Models without an [unk] word cannot absorb out-of-grammar speech inside the grammar;
        # their results are still checked against the phrases word by word.
        self.has_unknown_word = self.knows(UNKNOWN_WORD)
        log_event("asr.vosk.loaded", logger=_LOG, model=self.model_dir.name, grammar=self.supports_grammar)

    def knows(self, word: str) -> bool:
        """Whether ``word`` is in the model's vocabulary."""
        return int(self.model.vosk_model_find_word(word)) >= 0

    def unknown_words(self, phrases: tuple[str, ...]) -> list[str]:
        """Words of ``phrases`` this model cannot recognise (check flows at load time)."""
        return PhraseSet.build(phrases, None).unknown_words(_Vocabulary(self))

    def recognizer(self, phrase_set: PhraseSet | None) -> Any:
        """A fresh KaldiRecognizer; with a phrase list when the model supports one."""
        if phrase_set is not None and self.supports_grammar:
            phrases = [" ".join(words) for words in phrase_set.tokens]
            if self.has_unknown_word:
                phrases.append(UNKNOWN_WORD)
            rec = vosk.KaldiRecognizer(self.model, SAMPLE_RATE, json.dumps(phrases, ensure_ascii=False))
        else:
            rec = vosk.KaldiRecognizer(self.model, SAMPLE_RATE)
        rec.SetWords(True)
        return rec

    def open_stream(self, expectation: Expectation) -> VoskStream:
        return VoskStream(self, expectation)


class VoskStream(AsrStream):
    """One call's recognizer; the KaldiRecognizer is reused until the expectation changes."""

    def __init__(self, engine: VoskEngine, expectation: Expectation) -> None:
        self._engine = engine
        self._phrases: PhraseSet | None = None
        self._rec: Any = None
        self._segments: list[dict[str, Any]] = []
        self._frames = 0
        self._last_partial = ""
        self._fed_s = 0.0
        self._start_s = 0.0
        self.set_expectation(expectation)

    def set_expectation(self, expectation: Expectation) -> None:
        """Applies from the next utterance (the current one, if any, is dropped)."""
        self._phrases = PhraseSet.build(expectation.phrases, None) if expectation.grammar_mode else None
        self._rec = None
        self._clear()

    def _clear(self) -> None:
        self._segments = []
        self._frames = 0
        self._last_partial = ""

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        check_frame(frame, "vosk stream")
        if self._rec is None:
            self._rec = self._engine.recognizer(self._phrases)
            self._fed_s = 0.0
        if self._frames == 0:
            self._start_s = self._fed_s
        self._frames += 1
        self._fed_s += FRAME_SECONDS
        if self._rec.AcceptWaveform(frame.tobytes()):
            # Vosk's own endpointer closed a segment mid-utterance; ours decides the end.
            self._segments.append(json.loads(self._rec.Result()))
            return []
        if self._frames % self._engine.partial_every_frames:
            return []
        done = " ".join(str(seg.get("text", "")) for seg in self._segments)
        partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
        text = _clean(f"{done} {partial}")
        if text and text != self._last_partial:
            self._last_partial = text
            return [PartialResult(text)]
        return []

    def complete_phrase(self) -> FinalResult | None:
        """Grammar mode: when vosk's running hypothesis already is a phrase that ends the turn,
        finalize it (the utterance is consumed); otherwise keep listening."""
        phrases = self._phrases
        if phrases is None or self._rec is None or self._frames == 0:
            return None
        done = " ".join(str(seg.get("text", "")) for seg in self._segments)
        partial = str(json.loads(self._rec.PartialResult()).get("partial", ""))
        phrase = phrases.match(_clean(f"{done} {partial}").lower().split())
        if phrase is None or not phrases.ends_turn(phrase):
            return None
        return self.flush()

    def flush(self) -> FinalResult:
        if self._rec is None or self._frames == 0:
            self._clear()
            return FinalResult("", 0.0, (), in_grammar=self._phrases is None)
        self._segments.append(json.loads(self._rec.FinalResult()))
        # Vosk counts time from the recognizer's creation; results count from the utterance.
        offset = self._start_s
        words = tuple(
            WordTiming(
                str(item["word"]),
                float(item["start"]) - offset,
                float(item["end"]) - offset,
                float(item.get("conf", 1.0)),
            )
            for seg in self._segments
            for item in seg.get("result", ())
        )
        self._clear()
        said = [w for w in words if w.word != UNKNOWN_WORD]
        confidence = sum(w.confidence for w in words) / len(words) if words else 0.0
        text = " ".join(w.word for w in said)
        result = FinalResult(text, confidence, tuple(said))
        if self._phrases is not None:
            unknown = len(said) != len(words)
            phrase = None if unknown else self._phrases.match(w.word.lower() for w in said)
            result = FinalResult(phrase or text, confidence, tuple(said), in_grammar=phrase is not None)
        log_event(
            "asr.final", logger=_LOG, engine="vosk", mode="grammar" if self._phrases else "open",
            in_grammar=result.in_grammar, confidence=round(confidence, 3), words=len(said),
        )  # fmt: skip
        return result

    def reset(self) -> None:
        if self._rec is not None:
            self._rec.Reset()
        self._clear()

    def close(self) -> None:
        self._rec = None
        self._clear()


class _Vocabulary:
    """``word in vocabulary`` against a loaded model."""

    def __init__(self, engine: VoskEngine) -> None:
        self._engine = engine

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._engine.knows(word)


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", text.replace(UNKNOWN_WORD, " ")).strip()
