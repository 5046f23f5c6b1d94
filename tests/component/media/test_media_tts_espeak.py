"""pyttsx3 on espeak-ng for real: 8 kHz prompts, the content-addressed cache, bad input."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from config.errors import MediaError
from media.tts import TextToSpeech

pytestmark = pytest.mark.component

if shutil.which("espeak-ng") is None:  # pragma: no cover - setup installs it
    pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)", allow_module_level=True)


@pytest.fixture(scope="module")
def tts(tmp_path_factory: pytest.TempPathFactory) -> TextToSpeech:
    return TextToSpeech(tmp_path_factory.mktemp("tts-cache"))


def test_renders_speech_at_8khz(tts: TextToSpeech) -> None:
    audio = tts.render("Welcome to Acme Bank. How can I help you today?")
    assert audio.dtype == np.int16
    assert 2.0 < audio.size / 8000 < 6.0  # about ten words at 165 words per minute
    assert np.sqrt(np.mean(audio.astype(np.float64) ** 2)) > 500  # it is speech, not silence


def test_second_render_is_served_from_the_cache_identically(tts: TextToSpeech, tmp_path: Path) -> None:
    first = tts.render("Your reference number is A B 1 2.", rate=150)
    misses = tts.cache.misses
    again = tts.render("Your   reference number is A B 1 2.", rate=150)  # whitespace does not matter
    assert tts.cache.misses == misses
    assert np.array_equal(first, again)
    fresh = TextToSpeech(tts.cache.directory)  # a new process finds it on disk
    assert np.array_equal(fresh.render("Your reference number is A B 1 2.", rate=150), first)
    assert fresh.cache.misses == 0


def test_voice_and_rate_change_the_audio(tts: TextToSpeech) -> None:
    slow = tts.render("Thank you for calling.", rate=120)
    fast = tts.render("Thank you for calling.", rate=240)
    assert slow.size > fast.size * 1.4
    assert not np.array_equal(
        tts.render("Thank you for calling.", voice="en"),
        tts.render("Thank you for calling.", voice="en-us"),
    )


def test_prerender_fills_the_cache(tts: TextToSpeech) -> None:
    count = tts.prerender([("Goodbye.", None, None), ("Please hold.", "en-us", 170), ("  ", None, None)])
    misses = tts.cache.misses
    tts.render("Please hold.", "en-us", 170)
    assert count == 2 and tts.cache.misses == misses


@pytest.mark.parametrize(
    ("text", "voice", "rate", "message"),
    [
        ("", None, None, "TTS text is empty"),
        ("hello", "klingon", None, "TTS voice 'klingon' is not an espeak-ng voice"),
        ("hello", None, 5, "TTS rate 5 words per minute is outside 80..450"),
        ("x" * 2001, None, None, "split prompts longer than 2000"),
    ],
)
def test_bad_requests_say_what_is_wrong(
    tts: TextToSpeech, text: str, voice: str | None, rate: int | None, message: str
) -> None:
    with pytest.raises(MediaError, match=message):
        tts.render(text, voice, rate)
