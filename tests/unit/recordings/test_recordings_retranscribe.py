"""Re-transcription for QA without a speech service: which tracks, what is merged, retries."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from config.errors import MediaError
from media.asr.base import AsrEngine, AsrResult, AsrStream, Expectation, FinalResult
from media.frames import Frame
from recordings.qa_rules_loader import load_rules
from recordings.retranscribe import (
    MIN_CONFIDENCE,
    NO_WORDS,
    RetranscribeError,
    Retranscriber,
    caller_phrases,
    merge_turns,
    tracks_to_redo,
    utterances,
)

ROOT = Path(__file__).resolve().parents[3]


def two_bursts() -> npt.NDArray[np.int16]:
    """Two voiced one-second bursts (1-2 s and 3-4 s) between silences."""
    t = np.arange(8000) / 8000
    noise = np.random.default_rng(1).normal(0, 800, 8000)
    burst = (np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t) ** 2 * 6000 + noise).astype(np.int16)
    silence = np.zeros(8000, np.int16)
    return np.concatenate([silence, burst, silence, burst, silence])


class FlakyEngine(AsrEngine):
    """Answers each utterance with its frame count; the first ``failures`` flushes fail like a
    worker that died."""

    def __init__(self, failures: int = 0, in_grammar: bool = True, confidence: float = 0.9) -> None:
        self.failures = failures
        self.in_grammar = in_grammar
        self.confidence = confidence
        self.opened: list[Expectation] = []

    def open_stream(self, expectation: Expectation) -> AsrStream:
        self.opened.append(expectation)
        return _Stream(self)


class _Stream(AsrStream):
    def __init__(self, engine: FlakyEngine) -> None:
        self.engine = engine
        self.frames = 0

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        self.frames += 1
        return []

    def flush(self) -> FinalResult:
        frames, self.frames = self.frames, 0
        if self.engine.failures:
            self.engine.failures -= 1
            raise MediaError("speech worker connection lost")
        return FinalResult(f"yes {frames}", self.engine.confidence, in_grammar=self.engine.in_grammar)

    def reset(self) -> None:
        self.frames = 0

    def set_expectation(self, expectation: Expectation) -> None:
        pass


def test_utterances_are_cut_where_the_track_has_speech() -> None:
    found = utterances(two_bursts())
    assert [(round(u.start_s, 1), round(u.end_s, 1)) for u in found] == [(1.0, 2.0), (3.0, 4.0)]
    assert all(u.samples.size > 8000 for u in found)  # with the pre-roll and a tail
    assert utterances(np.zeros(16000, np.int16)) == []


def test_the_tracks_to_redo_are_an_empty_one_and_the_caller_on_request() -> None:
    both = {"turns": [{"speaker": "bot", "text": "Hello"}, {"speaker": "caller", "text": "yes"}]}
    assert tracks_to_redo(both, requested=False) == []
    assert tracks_to_redo(both, requested=True) == ["caller"]
    no_caller = {"turns": [{"speaker": "bot", "text": "Hello"}, {"speaker": "caller", "text": " "}]}
    assert tracks_to_redo(no_caller, requested=False) == ["caller"]
    assert tracks_to_redo({"turns": []}, requested=False) == ["caller", "bot"]


def test_only_speech_the_track_has_no_turn_for_is_added_in_time_order() -> None:
    sidecar: dict[str, Any] = {
        "call_id": "c1",
        "turns": [
            {"speaker": "bot", "text": "risk disclosure", "start_s": 0.0, "end_s": 9.0},
            {"speaker": "caller", "text": "yes", "start_s": 12.0, "end_s": 12.5},
        ],
    }
    heard = [
        {"speaker": "caller", "text": "go on", "start_s": 4.0, "end_s": 5.0, "retranscribed": True},
        {"speaker": "caller", "text": "yeah", "start_s": 11.9, "end_s": 12.6, "retranscribed": True},
    ]
    merged = merge_turns(sidecar, "caller", heard)
    assert [(t["speaker"], t["text"]) for t in merged["turns"]] == [
        ("bot", "risk disclosure"),
        ("caller", "go on"),
        ("caller", "yes"),
    ]
    assert len(sidecar["turns"]) == 2  # the sidecar itself is untouched


def test_the_caller_phrases_are_what_the_rules_listen_for_as_spoken_words() -> None:
    rules = load_rules(ROOT / "flows" / "library" / "qa" / "compliance_callback.yaml")
    phrases = caller_phrases(rules)
    assert {"yes", "i confirm", "no", "wrong number", "scam"} <= set(phrases)
    assert not [p for p in phrases if "#" in p or "{" in p]  # keys and templates cannot be heard
    assert "guaranteed return" not in phrases  # a bot-only phrase


def test_a_failed_utterance_is_retried_on_a_new_stream_with_an_event(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = FlakyEngine(failures=1)
    waited: list[float] = []
    transcriber = Retranscriber(engine, retry_delay_s=0.5, sleep=waited.append)
    with caplog.at_level(logging.WARNING, logger="ivr.recordings"):
        turns = transcriber.turns(two_bursts(), "caller", "c1", phrases=("yes",))
    assert [t["text"].split()[0] for t in turns] == ["yes", "yes"] and all(t["retranscribed"] for t in turns)
    assert waited == [0.5] and "qa.retranscribe_retry" in caplog.text
    assert len(engine.opened) == 2 and engine.opened[0] == Expectation(("yes",), open_vocabulary=False)


def test_a_service_that_keeps_failing_names_the_call_track_and_time() -> None:
    transcriber = Retranscriber(FlakyEngine(failures=10), retries=2, sleep=lambda _: None)
    with pytest.raises(RetranscribeError, match=r"call c7: cannot re-transcribe the caller track at 1\.0"):
        transcriber.turns(two_bursts(), "caller", "c7")


@pytest.mark.parametrize(("in_grammar", "confidence"), [(False, 0.95), (True, MIN_CONFIDENCE - 0.01)])
def test_speech_out_of_the_grammar_or_unsure_still_becomes_a_turn(
    in_grammar: bool, confidence: float
) -> None:
    engine = FlakyEngine(in_grammar=in_grammar, confidence=confidence)
    turns = Retranscriber(engine).turns(two_bursts(), "caller", phrases=("yes",))
    assert [t["text"] for t in turns] == [NO_WORDS, NO_WORDS]


def test_the_engine_is_made_only_when_there_is_speech_to_decode() -> None:
    made: list[FlakyEngine] = []

    def engine() -> FlakyEngine:
        made.append(FlakyEngine())
        return made[-1]

    transcriber = Retranscriber(engine)
    assert transcriber.turns(np.zeros(16000, np.int16), "caller") == [] and made == []
    assert len(transcriber.turns(two_bursts(), "caller")) == 2 and len(made) == 1
