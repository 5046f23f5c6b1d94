"""pyttsx3 on espeak-ng for real: 8 kHz prompts, the content-addressed cache, bad input."""

from __future__ import annotations

import multiprocessing
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from config.errors import MediaError
from media.frames import FRAME_BYTES, FRAME_SAMPLES
from media.tts import TextToSpeech, prompt_frames

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


def test_cached_gives_the_rendered_audio_once_it_is_in_memory(tts: TextToSpeech) -> None:
    assert tts.cached("Press one for sales.", rate=170) is None  # never rendered: no synthesis
    rendered = tts.render("Press one for sales.", rate=170)
    again = tts.cached("Press   one for sales.", rate=170)
    assert again is not None and np.array_equal(again, rendered)
    assert tts.cached("Press one for sales.", rate=171) is None
    frames = prompt_frames(rendered)
    assert all(len(f) == FRAME_BYTES for f in frames) and len(frames) == -(-rendered.size // FRAME_SAMPLES)
    assert np.array_equal(np.frombuffer(b"".join(frames), "<i2")[: rendered.size], rendered)
    with pytest.raises(MediaError, match="TTS text is empty"):
        tts.cached(" ")


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


def _pitch_hz(audio: np.ndarray) -> float:
    """Median autocorrelation pitch over voiced 40 ms frames (8 kHz)."""
    found = []
    for start in range(0, audio.size - 320, 160):
        frame = audio[start : start + 320].astype(np.float64)
        if np.abs(frame).mean() < 300:
            continue
        frame -= frame.mean()
        corr = np.correlate(frame, frame, "full")[319:]
        low, high = 8000 // 400, 8000 // 70
        found.append(8000 / (low + int(np.argmax(corr[low:high]))))
    return float(np.median(found))


def test_one_long_lived_worker_keeps_each_prompts_voice_and_rate(tmp_path: Path) -> None:
    tts = TextToSpeech(tmp_path / "cache", workers=1)
    try:
        text = "This sentence is long enough to measure the pitch and the length of the voice."
        male = [tts.render(f"{text} {n}.", voice="en-us", rate=165) for n in range(2)]
        female = tts.render(f"{text} 2.", voice="en-us+f3", rate=240)
        after = tts.render(f"{text} 3.", voice="en-us", rate=165)
        assert tts._pool.started == 1  # every render went to the same process
        assert _pitch_hz(female) > 1.5 * _pitch_hz(male[0])
        assert abs(_pitch_hz(after) - _pitch_hz(male[0])) < 0.1 * _pitch_hz(male[0])
        assert abs(after.size - male[1].size) < 0.05 * male[1].size  # the fast rate did not stick
    finally:
        tts.close()


def test_a_dead_worker_is_replaced_and_a_bad_request_fails_alone(tmp_path: Path) -> None:
    tts = TextToSpeech(tmp_path / "cache", workers=1)
    try:
        tts.render("First prompt.")
        worker = tts._pool._idle.get_nowait()
        worker.process.kill()
        worker.process.wait()
        tts._pool._idle.put(worker)
        assert tts.render("Second prompt.").size > 0
        assert tts._pool.started == 2
        with pytest.raises(MediaError, match="TTS render failed"):
            tts._pool.render("no-such-voice", 165, "hello", tmp_path / "x.wav", 30)
        assert tts.render("Third prompt.").size > 0
        assert tts._pool.started == 2  # the bad request did not cost the worker
    finally:
        tts.close()


def test_concurrent_renders_share_a_bounded_set_of_workers(tmp_path: Path) -> None:
    tts = TextToSpeech(tmp_path / "cache", workers=2)
    try:
        with ThreadPoolExecutor(6) as pool:
            audio = list(pool.map(lambda n: tts.render(f"Prompt number {n}."), range(12)))
        assert all(a.size > 0 for a in audio)
        assert tts._pool.started <= 2
    finally:
        tts.close()


def _prerender_in_child(cache_dir: str, texts: list[str], out: Any) -> None:
    tts = TextToSpeech(Path(cache_dir), workers=1)
    try:
        tts.prerender(texts)
        out.put(tts.cache.misses)
    finally:
        tts.close()


def test_prerendering_happens_once_per_machine_not_once_per_process(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    out = context.Queue()
    texts = [f"Static prompt number {n}." for n in range(6)]
    children = [
        context.Process(target=_prerender_in_child, args=(str(tmp_path), texts, out)) for _ in range(3)
    ]
    for child in children:
        child.start()
    misses = sorted(out.get(timeout=120) for _ in children)
    for child in children:
        child.join(30)
    assert misses == [0, 0, len(texts)]  # one process rendered, the others found the cache filled
