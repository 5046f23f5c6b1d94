"""Text to 8 kHz prompt audio with pyttsx3 on espeak-ng, cached by content.

A prompt not in the cache is rendered by a long-lived :mod:`media.tts_worker` process
(:mod:`media.synth_pool`): synthesis never runs on the call process's GIL, and pyttsx3 and
espeak-ng stay loaded, so a short prompt costs about 20 ms of synthesis.
espeak-ng renders 22.05 kHz; the audio is resampled to the 8 kHz telephone rate with soxr and
stored in a :class:`~media.tts_cache.TtsCache`, so a static prompt is synthesized once and a
repeated dynamic one is a cache hit. pyttsx3 silently falls back to a default voice for an
unknown name, so voices are checked against espeak-ng's list (loaded once, in process) first.
"""

from __future__ import annotations

import re
import tempfile
import threading
import wave
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from config.errors import MediaError, MissingDependencyError
from media.frames import FRAME_SAMPLES
from media.resample import resample
from media.synth_pool import SynthPool
from media.tts_cache import Samples, TtsCache, cache_key

_MIN_RATE, _MAX_RATE = 80, 450
_MAX_CHARS = 2000
_RENDER_TIMEOUT_S = 30.0


class TextToSpeech:
    def __init__(
        self, cache_dir: Path, default_voice: str = "en-us", default_rate: int = 165, workers: int = 2
    ) -> None:
        self.cache = TtsCache(cache_dir)
        self.default_voice = default_voice
        self.default_rate = default_rate
        self._lock = threading.Lock()
        self._engine: Any = None
        self._voices: set[str] = set()
        self._engine_tag = f"pyttsx3-{_version('pyttsx3')}-espeak"
        self._pool = SynthPool(workers)

    def _load(self) -> Any:
        if self._engine is None:
            try:
                import pyttsx3  # noqa: PLC0415 - optional engine, loaded on first use

                engine = pyttsx3.init("espeak")
            except (ImportError, RuntimeError, OSError) as exc:
                raise MissingDependencyError(
                    "text to speech (pyttsx3 with espeak-ng)", "install the Debian package 'espeak-ng'"
                ) from exc
            for voice in engine.getProperty("voices"):
                name = str(voice.id).lower()
                # pyttsx3 selects voices by espeak-ng voice file name ("en-us", "en"), not language.
                self._voices.update({name, name.rsplit("/", 1)[-1]})
            self._engine = engine
        return self._engine

    def check_voice(self, voice: str) -> str:
        """The voice name if espeak-ng has it (``en-us``, ``gmw/en-us``, ``en-us+f3``), else MediaError."""
        with self._lock:
            self._load()
        base = voice.lower().split("+", 1)[0]
        if base not in self._voices:
            close = sorted(v for v in self._voices if "/" not in v and v.startswith(base[:2]))[:6]
            raise MediaError(
                f"TTS voice {voice!r} is not an espeak-ng voice (similar: {', '.join(close) or 'none'})"
            )
        return voice

    def render(self, text: str, voice: str | None = None, rate: int | None = None) -> Samples:
        """8 kHz int16 audio for ``text`` (read-only array; from the cache when possible)."""
        clean, voice, rate, key = self._request(text, voice, rate)
        cached = self.cache.get(key)
        if cached is not None:
            return cached
        self.check_voice(voice)
        return self.cache.put(key, self._synthesize(clean, voice, rate))

    def cached(self, text: str, voice: str | None = None, rate: int | None = None) -> Samples | None:
        """:meth:`render`'s audio when the cache holds it in memory, else None. No disk, no
        synthesis: cheap enough for the event loop, so a pre-rendered prompt (or a template's
        fixed first piece) never waits for a worker thread behind other calls' work."""
        return self.cache.peek(self._request(text, voice, rate)[3])

    def _request(self, text: str, voice: str | None, rate: int | None) -> tuple[str, str, int, str]:
        """Checked (text, voice, rate) and their cache key; MediaError for a bad request."""
        clean = re.sub(r"\s+", " ", text).strip()
        if not clean:
            raise MediaError("TTS text is empty: a prompt needs words")
        if len(clean) > _MAX_CHARS:
            raise MediaError(f"TTS text is {len(clean)} characters; split prompts longer than {_MAX_CHARS}")
        voice = voice or self.default_voice
        rate = rate or self.default_rate
        if not _MIN_RATE <= rate <= _MAX_RATE:
            raise MediaError(f"TTS rate {rate} words per minute is outside {_MIN_RATE}..{_MAX_RATE}")
        return clean, voice, rate, cache_key(self._engine_tag, voice.lower(), str(rate), clean)

    def prerender(self, items: Iterable[str | tuple[str, str | None, int | None]]) -> int:
        """Render texts or (text, voice, rate) items into the cache; returns how many there were.

        Called when a flow loads, so the first caller hears its static prompts at once. The
        cache is shared by every engine process on the machine: the first to take the cache's
        lock renders, the others wait and then find every prompt cached (once per machine,
        not once per worker).
        """
        self.warm()
        wanted = [(item, None, None) if isinstance(item, str) else item for item in items]
        wanted = [(text, voice, rate) for text, voice, rate in wanted if text.strip()]
        with self.cache.exclusive():
            for text, voice, rate in wanted:
                self.render(text, voice, rate)
        return len(wanted)

    def _synthesize(self, text: str, voice: str, rate: int) -> Samples:
        with tempfile.TemporaryDirectory(prefix="ivr-tts-") as tmp:
            path = Path(tmp) / "prompt.wav"
            self._pool.render(voice, rate, text, path, _RENDER_TIMEOUT_S)
            try:
                with wave.open(str(path), "rb") as wav:
                    if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                        raise MediaError(
                            f"espeak-ng wrote {wav.getnchannels()} channel(s) of "
                            f"{8 * wav.getsampwidth()}-bit audio; expected 16-bit mono"
                        )
                    rate_hz = wav.getframerate()
                    samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.int16)
            except (OSError, EOFError, wave.Error) as exc:
                raise MediaError(
                    f"espeak-ng produced no usable audio for a {len(text)}-character prompt"
                ) from exc
        if samples.size == 0:
            raise MediaError(f"espeak-ng produced no audio for a {len(text)}-character prompt")
        return resample(samples, rate_hz)

    def warm(self) -> None:
        """Start a synthesis worker ahead of the first prompt that is not cached."""
        self._pool.warm()

    def close(self) -> None:
        """Stop the synthesis workers."""
        self._pool.close()


def prompt_frames(samples: Samples) -> list[bytes]:
    """Prompt audio as 20 ms little-endian frames for the bridge, the last one padded with silence."""
    audio = np.asarray(samples, dtype=np.int16)
    pad = (-audio.size) % FRAME_SAMPLES
    if pad:
        audio = np.concatenate([audio, np.zeros(pad, dtype=np.int16)])
    pcm = audio.astype("<i2").tobytes()
    step = FRAME_SAMPLES * 2
    return [pcm[i : i + step] for i in range(0, len(pcm), step)]


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "unknown"
