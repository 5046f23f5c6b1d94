"""The pocketsphinx stream's decode ahead (:mod:`media.asr.pocketsphinx_turn`), with the real
recognizer on espeak-ng speech: a check or final after ``prepare`` gives what it would have
given without it and runs no grammar pass; audio after it makes it stale; off-menu speech ends
the turn at the pause, a leading carrier alone does not."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import numpy.typing as npt
import pytest

from media.asr import pocketsphinx_results, pocketsphinx_turn
from media.asr.base import AsrStream, Expectation, FinalResult
from media.asr.pocketsphinx_engine import PocketsphinxEngine
from media.frames import split_frames
from tests.component.media.test_media_asr_pocketsphinx import MENU, speak

pytestmark = pytest.mark.component

WHEN = Expectation(("tomorrow", "ten in the morning"), open_vocabulary=False)


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Counts grammar passes: one entry per pass, the audio length it decoded."""
    counted: list[int] = []
    real = pocketsphinx_results.decode_utterance

    def counting(*args: object) -> object:
        audio = args[3]
        assert isinstance(audio, np.ndarray)
        counted.append(audio.size)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(pocketsphinx_turn, "decode_utterance", counting)
    yield counted


def fed(engine: PocketsphinxEngine, expectation: Expectation, audio: npt.NDArray[np.int16]) -> AsrStream:
    stream = engine.open_stream(expectation)
    for frame in split_frames(audio):
        stream.push_frame(frame)
    return stream


def same(a: FinalResult | None, b: FinalResult | None) -> bool:
    """Same verdict, and the same phrase when one was heard. The front end dithers (adds random
    noise), so confidences and the garbage loop's words ("this and", "is and") vary run to run."""
    if a is None or b is None:
        return a is b
    return a.in_grammar == b.in_grammar and (a.text == b.text or not a.in_grammar)


def test_check_after_prepare_reads_the_decode_made_ahead(
    engine: PocketsphinxEngine, passes: list[int]
) -> None:
    audio = speak("talk to an agent", "en-us")
    plain = fed(engine, MENU, audio).complete_phrase()
    assert plain is not None and plain.text == "Talk to an agent"
    ahead = fed(engine, MENU, audio)
    ahead.prepare(100, 200)
    before = len(passes)
    assert same(ahead.complete_phrase(), plain)
    assert len(passes) == before  # nothing decoded between the decision and the answer


def test_final_after_a_held_pause_reads_the_decode_made_ahead(
    engine: PocketsphinxEngine, passes: list[int]
) -> None:
    audio = speak("ten", "en-us")  # a prefix of "ten in the morning": the turn is held open
    plain_stream = fed(engine, WHEN, audio)
    assert plain_stream.complete_phrase() is None
    plain = plain_stream.flush()
    ahead = fed(engine, WHEN, audio)
    ahead.prepare(100, 200)
    before = len(passes)
    assert ahead.complete_phrase() is None
    assert same(ahead.flush(), plain)
    assert len(passes) == before


def test_audio_after_prepare_makes_the_decode_ahead_stale(
    engine: PocketsphinxEngine, passes: list[int]
) -> None:
    first, rest = speak("ten", "en-us"), speak("in the morning", "en-us")
    stream = fed(engine, WHEN, first)
    stream.prepare(100, 200)
    for frame in split_frames(rest):  # the caller went on after the pause
        stream.push_frame(frame)
    before = len(passes)
    result = stream.flush()
    assert len(passes) == before + 1 and passes[-1] > first.size * 2  # the whole utterance, at 16 kHz
    assert result.text == "ten in the morning"


def test_off_menu_speech_ends_the_turn_at_the_pause(engine: PocketsphinxEngine, passes: list[int]) -> None:
    """Off-menu speech is not held for the long pause: its final (a rejection or a read-back)
    comes at the first check. Statistical like every rejection: most of these must end. Taken
    whole by the garbage loop, it costs the decode ahead one pass (no final pass after it)."""
    ended = 0
    for sentence in ("what is the weather like today", "my name is john smith", "the train leaves at noon"):
        stream = fed(engine, MENU, speak(sentence, "en-us"))
        before = len(passes)
        stream.prepare(100, 200)
        ahead = len(passes) - before
        result = stream.complete_phrase()
        assert len(passes) == before + ahead  # the check read the decode ahead
        if result is not None:
            ended += 1
            assert not result.in_grammar or result.confidence <= engine.confirm_confidence
            assert ahead == 1  # the check's own pass is the final (garbage only, or a whole phrase)
    assert ended >= 2


def test_a_leading_carrier_alone_holds_the_turn(engine: PocketsphinxEngine) -> None:
    stream = fed(engine, MENU, speak("i would like to", "en-us"))
    assert stream.complete_phrase() is None  # the caller has not said what yet
