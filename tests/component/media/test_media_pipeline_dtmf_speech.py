"""The in-band DTMF detector must never hear a digit in speech (real espeak-ng audio over µ-law)."""

from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from media import g711
from media.audio_checks import decode_wav
from media.dtmf_detector import DtmfDetector, dtmf_tone
from media.frames import split_frames

pytestmark = pytest.mark.component

TEXT = (
    "Thank you for calling. Please say your account number, or press one for billing and two for "
    "support. Nine eight seven six five four three two one zero. Yes, I want to check my balance."
)


def _speak(text: str, voice: str, speed: int) -> np.ndarray:
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        if os.environ.get("CI") == "true":
            pytest.fail("espeak-ng is not installed (apt-get install espeak-ng)")
        pytest.skip("espeak-ng is not installed")
    cmd = [espeak, "-v", voice, "-s", str(speed), "--stdout", text]
    wav = subprocess.run(cmd, capture_output=True, check=True)
    return g711.ulaw_decode(g711.ulaw_encode(decode_wav(wav.stdout, f"espeak-ng {voice}")))


@pytest.mark.parametrize(("voice", "speed"), [("en-us", 150), ("en+f3", 200), ("en-gb", 130), ("de", 175)])
def test_media_dtmf_no_false_digits_on_speech(voice: str, speed: int) -> None:
    detector = DtmfDetector()
    speech = _speak(TEXT, voice, speed)
    found = [e for i, f in enumerate(split_frames(speech)) for e in detector.push_frame(f, i * 0.02)]
    assert found == []


def test_media_dtmf_digit_pressed_while_talking_is_still_heard() -> None:
    """A key press on top of quieter speech (caller presses while talking) still decodes."""
    speech = _speak("one two three, I am pressing a key now", "en-us", 160).astype(np.float64) * 0.3
    tone = dtmf_tone("4", 0.08, row_dbfs=-12, col_dbfs=-12).astype(np.float64)
    start = speech.size // 2
    speech[start : start + tone.size] += tone
    detector = DtmfDetector()
    mixed = np.clip(speech, -32768, 32767).astype(np.int16)
    found = [e for i, f in enumerate(split_frames(mixed)) for e in detector.push_frame(f, i * 0.02)]
    assert [e.digit for e in found] == ["4"]
    assert found[0].at == pytest.approx(start / 8000, abs=0.03)
