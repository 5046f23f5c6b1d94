"""Pick and load the process's one speech recognizer from settings."""

from __future__ import annotations

from config.errors import MediaError, MissingDependencyError
from config.settings import MediaSettings
from media.asr.base import AsrEngine


def create_asr_engine(settings: MediaSettings) -> AsrEngine:
    """Load the engine named by ``media.asr_engine``; call once per process and share it.

    A bad choice fails here, at start-up, naming the setting to fix.
    """
    if settings.asr_engine == "pocketsphinx":
        try:
            from media.asr.pocketsphinx_engine import PocketsphinxEngine  # noqa: PLC0415 - the chosen engine only
        except ImportError as exc:
            raise MissingDependencyError(
                "media.asr_engine: pocketsphinx", "pip install 'pocketsphinx>=5.0'"
            ) from exc
        return PocketsphinxEngine()
    if settings.asr_engine == "vosk":
        if not settings.vosk_model_dir.strip():
            raise MediaError(
                "media.vosk_model_dir: empty, but media.asr_engine is 'vosk'; set it to an unpacked "
                "vosk model directory (IVR_MEDIA__VOSK_MODEL_DIR=/path/to/vosk-model-small-en-us-0.15)"
            )
        try:
            from media.asr.vosk_engine import VoskEngine  # noqa: PLC0415 - the chosen engine only
        except ImportError as exc:
            raise MissingDependencyError("media.asr_engine: vosk", "pip install 'vosk>=0.3.45'") from exc
        return VoskEngine(settings.vosk_model_dir, setting="media.vosk_model_dir")
    raise MediaError(f"media.asr_engine: unknown engine {settings.asr_engine!r} (pocketsphinx or vosk)")
