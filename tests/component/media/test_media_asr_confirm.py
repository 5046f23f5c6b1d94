"""A near miss on a menu is proposed, not rejected: replayed through the demo flow, the
recognizer's verdict on a phrase's fit decides between acting, reading back and reprompting.

The fits are the ones pocketsphinx reports (docs/asr.md, ``AcousticFit``); the engine's own
``verify`` turns them into the final the call hands to the flow, exactly as ``ivr/call_media``
does (text, confidence, in_grammar).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from config.errors import MediaError
from flows import FlowSession, Play, Recognition, load_flow
from flows.model import Flow
from media.asr.base import FinalResult, WordTiming
from media.asr.grammar import PhraseSet
from media.asr.pocketsphinx_engine import PocketsphinxEngine
from media.asr.pocketsphinx_results import AcousticFit

pytestmark = pytest.mark.component
DEMO = Path(__file__).resolve().parents[3] / "flows" / "library" / "demo.yaml"
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)
CLOSE = AcousticFit(key=-3.0, spoken=-3.0, key_share=1.0)
NEAR = AcousticFit(key=-4.3, spoken=-3.7, key_share=0.8)  # below the accept floor, within confirm
FAR = AcousticFit(key=-5.0, spoken=-4.5, key_share=0.8)


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


@pytest.fixture(scope="module")
def demo() -> Flow:
    return load_flow(DEMO)


def heard(engine: PocketsphinxEngine, demo: Flow, fit: AcousticFit) -> FinalResult:
    """The final for "i lost my card" (sure words) whose fit is ``fit``."""
    words = tuple(
        WordTiming(w, 0.3 + 0.2 * i, 0.5 + 0.2 * i, 0.9) for i, w in enumerate(["i", "lost", "my", "card"])
    )
    raw = FinalResult("i lost my card", 0.9, words, in_grammar=True)
    return engine.verify(PhraseSet.build(demo.listens["ask"].phrases), raw, fit)


def replay(demo: Flow, result: FinalResult) -> tuple[FlowSession, list[str]]:
    session = FlowSession(demo, {}, NOW)
    list(session.start(NOW))
    assert session.step == "ask"
    actions = session.handle(Recognition(result.text, result.confidence, result.in_grammar), NOW)
    return session, [a.text for a in actions if isinstance(a, Play)]


def test_a_close_fit_is_acted_on_at_once(engine: PocketsphinxEngine, demo: Flow) -> None:
    result = heard(engine, demo, CLOSE)
    assert result.in_grammar and result.confidence == pytest.approx(0.9)
    session, said = replay(demo, result)
    assert session.step == "understood_lost_card", said


def test_a_near_miss_is_read_back_and_taken_on_yes(engine: PocketsphinxEngine, demo: Flow) -> None:
    result = heard(engine, demo, NEAR)
    assert result.in_grammar and result.text == "i lost my card"
    assert demo.settings.reject_below <= result.confidence < demo.settings.confirm_below
    session, said = replay(demo, result)
    assert said == ["I think you said report a lost card. Is that right?"]
    assert session.state == "confirming"
    actions = session.handle(Recognition("yes", 0.9), NOW)
    assert session.step == "understood_lost_card", actions


def test_a_near_miss_read_back_and_denied_asks_again(engine: PocketsphinxEngine, demo: Flow) -> None:
    session, _ = replay(demo, heard(engine, demo, NEAR))
    session.handle(Recognition("no", 0.9), NOW)
    assert session.step == "ask"


def test_a_far_fit_is_a_reprompt(engine: PocketsphinxEngine, demo: Flow) -> None:
    result = heard(engine, demo, FAR)
    assert not result.in_grammar
    session, said = replay(demo, result)
    assert session.step == "ask" and said and said[0].startswith("Sorry, I didn't understand"), said


def test_without_a_confirm_floor_a_near_miss_is_a_reprompt(demo: Flow) -> None:
    strict = PocketsphinxEngine(confirm_floor=None)
    assert not heard(strict, demo, NEAR).in_grammar


def test_a_confidence_outside_0_1_is_refused() -> None:
    with pytest.raises(MediaError, match=r"confirm_confidence 1\.5 is not within 0\.\.1"):
        PocketsphinxEngine(confirm_confidence=1.5)
