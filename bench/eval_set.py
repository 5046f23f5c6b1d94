"""Generate the speech evaluation set: phrases x voices x speeds x noise, over a µ-law line.

Nothing is hand-picked: every utterance is synthesized by espeak-ng, resampled to 8 kHz,
padded with pauses, mixed with seeded noise at a target SNR and passed through G.711 µ-law
and back, as a caller's voice would arrive. The same seed gives the same files.

Run: .venv/bin/python bench/eval_set.py [--out DIR] [--lang en|ko]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import wave
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media import g711
from media.resample import resample

SAMPLE_RATE = 8000
LEAD_S, TRAIL_S = 0.3, 0.5

# Each step: the phrases the flow expects (grammar), then utterances it is tested with.
# An expected value of None means the caller said something else (out of grammar).
EN_STEPS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]] = {
    "menu": (
        ("check my balance", "i lost my card", "pay a bill", "opening hours", "talk to an agent"),
        (
            ("check my balance", "check my balance"), ("i lost my card", "i lost my card"),
            ("pay a bill", "pay a bill"), ("opening hours", "opening hours"),
            ("talk to an agent", "talk to an agent"),
            ("what is the weather like today", None), ("i want to buy a new car", None),
        ),
    ),
    "confirm": (("yes", "no"), (("yes", "yes"), ("no", "no"), ("maybe later", None))),
    "digit": (
        ("one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "zero"),
        (("one", "one"), ("two", "two"), ("three", "three"), ("five", "five"), ("seven", "seven"),
         ("nine", "nine"), ("zero", "zero")),
    ),
}  # fmt: skip
EN_OPEN = (
    "i would like to check my balance please",
    "my card was stolen yesterday",
    "can i talk to an agent",
    "when are you open on saturday",
)
KO_STEPS: dict[str, tuple[tuple[str, ...], tuple[tuple[str, str | None], ...]]] = {
    "menu": (
        ("상담원 연결", "잔액 조회", "카드 분실", "요금 납부"),
        (("상담원 연결", "상담원 연결"), ("잔액 조회", "잔액 조회"), ("카드 분실", "카드 분실"),
         ("요금 납부", "요금 납부"), ("오늘 날씨가 좋네요", None)),
    ),
    "confirm": (("네", "아니요"), (("네", "네"), ("아니요", "아니요"), ("잘 모르겠어요", None))),
}  # fmt: skip
KO_OPEN = ("네", "상담원 연결해 주세요")
VOICES = {"en": ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us+m3"), "ko": ("ko", "ko+f3")}
RATES = (140, 180)
SNRS_DB = (20.0, 10.0)


@dataclass(frozen=True)
class Utterance:
    path: str
    text: str
    step: str  # "open" for the word-error-rate set
    phrases: tuple[str, ...]
    expected: str | None
    voice: str
    rate: int
    snr_db: float
    speech_end_s: float  # where the speech stops (the trailing pause follows)


def speak(text: str, voice: str, rate: int) -> npt.NDArray[np.int16]:
    """espeak-ng speech resampled to 8 kHz."""
    out = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(out)) as wav:
        raw = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
        return resample(raw, wav.getframerate())


def line(speech: npt.NDArray[np.int16], snr_db: float, seed: int) -> npt.NDArray[np.int16]:
    """Pauses, pink-ish noise at ``snr_db`` below the speech power, then a µ-law round trip."""
    audio = np.concatenate(
        [np.zeros(int(LEAD_S * SAMPLE_RATE)), speech.astype(np.float64), np.zeros(int(TRAIL_S * SAMPLE_RATE))]
    )
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.normal(size=audio.size))
    spectrum /= np.sqrt(np.maximum(np.arange(spectrum.size), 1.0))  # 1/f power: like line/room noise
    noise = np.fft.irfft(spectrum, n=audio.size)
    voiced = speech.astype(np.float64)
    speech_power = float(np.mean(voiced[np.abs(voiced) > 0.05 * np.abs(voiced).max()] ** 2))
    noise *= np.sqrt(speech_power / 10 ** (snr_db / 10) / float(np.mean(noise**2)))
    mixed = np.clip(audio + noise, -32768, 32767).astype(np.int16)
    return g711.ulaw_decode(g711.ulaw_encode(mixed))


def write_line_wav_once(path: Path, speech: npt.NDArray[np.int16], snr_db: float, digest: str) -> None:
    """``speech`` over the line (:func:`line`, seeded from ``digest``) as a 16-bit WAV at
    ``path``, unless an earlier run wrote it; written to a temporary name first, so an
    interrupted run never leaves a half file that a later one would take as done."""
    if path.exists():
        return
    audio = line(speech, snr_db, int(digest[:8], 16))
    tmp = path.with_suffix(".tmp")
    with wave.open(str(tmp), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(audio.tobytes())
    tmp.replace(path)


def build(out: Path, lang: str = "en") -> list[Utterance]:
    """Write the set under ``out`` (reusing files already there) and return its manifest."""
    out.mkdir(parents=True, exist_ok=True)
    steps, open_texts = (EN_STEPS, EN_OPEN) if lang == "en" else (KO_STEPS, KO_OPEN)
    jobs: list[tuple[str, tuple[str, ...], str, str | None]] = [
        (step, phrases, text, expected)
        for step, (phrases, tests) in steps.items()
        for text, expected in tests
    ]
    jobs += [("open", (), text, text) for text in open_texts]
    items: list[Utterance] = []
    for step, phrases, text, expected in jobs:
        for voice in VOICES[lang]:
            for rate in RATES:
                speech = speak(text, voice, rate)
                for snr in SNRS_DB:
                    name = f"{lang}|{step}|{text}|{voice}|{rate}|{snr:g}"
                    digest = hashlib.sha256(name.encode()).hexdigest()[:16]
                    path = out / f"{lang}-{step}-{digest}.wav"
                    write_line_wav_once(path, speech, snr, digest)
                    end_s = LEAD_S + speech.size / SAMPLE_RATE
                    items.append(Utterance(str(path), text, step, phrases, expected, voice, rate, snr, end_s))
    (out / f"manifest-{lang}.json").write_text(
        json.dumps([asdict(item) for item in items], ensure_ascii=False, indent=1), encoding="utf-8"
    )
    return items


def read_wav(path: str) -> npt.NDArray[np.int16]:
    with wave.open(path) as wav:
        return np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("data/eval"))
    parser.add_argument("--lang", choices=("en", "ko"), default="en")
    args = parser.parse_args()
    items = build(args.out, args.lang)
    print(f"{len(items)} utterances under {args.out}")


if __name__ == "__main__":
    main()
