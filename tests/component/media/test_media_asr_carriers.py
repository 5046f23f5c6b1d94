"""Natural phrasing gets the right phrase, off-menu speech gets none (pocketsphinx, real speech).

The menu is the demo flow's ``ask`` step as the call sees it: its intents' phrases plus the
global intents. "I would like to talk to an agent please" was heard as "what are your opening
hours" before carrier phrases and the fit check; an off-menu sentence must come back
``in_grammar=False`` (the flow reprompts) instead of being forced onto a menu phrase. A
reprompt is acceptable, a wrong intent never.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.loader import load_flow
from flows.matching import PhraseMatcher
from media.asr.base import Expectation
from media.asr.grammar import PhraseSet, jsgf_grammar
from media.asr.pocketsphinx_engine import PocketsphinxEngine
from tests.component.media.test_media_asr_pocketsphinx import decode, speak

pytestmark = pytest.mark.component
DEMO = Path(__file__).resolve().parents[3] / "flows" / "library" / "demo.yaml"


@pytest.fixture(scope="module")
def engine() -> PocketsphinxEngine:
    return PocketsphinxEngine()


@pytest.fixture(scope="module")
def menu() -> tuple[Expectation, PhraseMatcher]:
    flow = load_flow(DEMO)
    listen = flow.listens["ask"]
    return Expectation(listen.phrases, open_vocabulary=False), flow.matchers["ask"]


@pytest.mark.parametrize("voice", ["en-us", "en-us+m3"])
@pytest.mark.parametrize(
    ("spoken", "intent"),
    [
        ("I would like to check my balance please", "balance"),
        ("please block my card", "lost_card"),
        ("could you repeat that please", "repeat"),
    ],
)
def test_media_asr_carrier_phrases_around_a_menu_phrase_give_its_intent(
    engine: PocketsphinxEngine, menu: tuple[Expectation, PhraseMatcher], spoken: str, intent: str, voice: str
) -> None:
    expectation, matcher = menu
    result, _ = decode(engine.open_stream(expectation), speak(spoken, voice))
    assert result.in_grammar, result
    assert result.text in expectation.phrases  # the phrase as the flow spelled it, carriers dropped
    match = matcher.match(result.text)
    assert match is not None and match.intent.name == intent


@pytest.mark.parametrize("voice", ["en-us", "en-us+m3"])
def test_media_asr_a_phrase_the_menu_lacks_is_its_intent_or_a_reprompt_never_another(
    engine: PocketsphinxEngine, menu: tuple[Expectation, PhraseMatcher], voice: str
) -> None:
    """The issue's example: "talk to an agent" is no phrase ("agent" and "talk to a person"
    are), so the search bends it onto the nearest phrase; the fit check must not let that
    become "opening hours" (which it was), and it may reject it."""
    expectation, matcher = menu
    result, _ = decode(
        engine.open_stream(expectation), speak("I would like to talk to an agent please", voice)
    )
    if result.in_grammar:
        match = matcher.match(result.text)
        assert match is not None and match.intent.name == "agent", result


@pytest.mark.parametrize("voice", ["en-us", "en-gb"])
@pytest.mark.parametrize(
    "spoken",
    ["what is the weather like today", "I want to buy a new car", "my neighbour has a big dog",
     "how much is a ticket to Paris", "yes please", "I would like"],
)  # fmt: skip
def test_media_asr_off_menu_sentences_are_rejected_not_forced_onto_a_phrase(
    engine: PocketsphinxEngine, menu: tuple[Expectation, PhraseMatcher], spoken: str, voice: str
) -> None:
    expectation, _ = menu
    result, _ = decode(engine.open_stream(expectation), speak(spoken, voice))
    assert not result.in_grammar, result


def test_media_asr_single_word_answers_get_no_carriers() -> None:
    digits = PhraseSet.build(("one", "two"))
    menu = PhraseSet.build(("check my balance", "agent"))
    assert not digits.is_menu and menu.is_menu
    text = jsgf_grammar(menu, carriers=(("c_can c_i",), ("c_please",)))
    assert "public <utterance> = [<before>] <phrase> [<after>];" in text
    assert "<before> = c_can c_i;" in text and "<after> = c_please;" in text
