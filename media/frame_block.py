"""The numbers of a block of caller frames, computed at once (for :mod:`media.pipeline`).

A call loop that drains several 20 ms frames in one wake hands them over together: input checks,
frame powers (caller and prompt echo reference), clipping, DTMF spectra and the VAD cost a few
numpy calls for the whole block instead of a few per frame. Only the numbers live here; the
pipeline then steps its state machines frame by frame over them, so the events are exactly those
of feeding the frames one at a time (frame powers are exact sums of int16 squares in float64).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from config.errors import MediaError
from config.logs import log_event
from media.audio_checks import CLIP_LEVEL, clipping_ratios, ensure_frame, frame_powers
from media.dtmf_detector import DtmfDetector
from media.frames import FRAME_SAMPLES, SILENCE, Frame
from media.vad import VadBackend

_LOGGER = logging.getLogger("ivr.media")
CLIP_SHARE = 0.01
"""A frame with more samples than this share at the rails counts as clipped."""
CLIP_POWER = (math.floor(CLIP_SHARE * FRAME_SAMPLES) + 1) * CLIP_LEVEL**2 / FRAME_SAMPLES
"""The least power a clipped frame can have (2 or more samples at the rails): below it, and
that is nearly always, no frame needs its clipping counted."""


@dataclass(frozen=True, slots=True)
class CallerBlock:
    """Per caller frame of a block: the frame as checked (silence when it was rejected), why it
    was rejected, its power, whether it clipped, the DTMF keys of its two decision windows, what
    the VAD said, and the powers of the valid prompt frames sent in its tick before it."""

    frames: list[Frame]
    rejected: list[str | None]
    powers: list[float]
    clipped: list[bool]
    keys: list[tuple[str | None, str | None]] | None
    voiced: list[bool]
    prompt_powers: list[list[float]]


def analyse_block(
    frames: Sequence[Frame],
    prompt_frames: Sequence[Sequence[Frame]] | None,
    dtmf: DtmfDetector | None,
    vad: VadBackend,
) -> CallerBlock:
    """The numbers of ``frames`` (at least one) and of ``prompt_frames[k]``, the frames the bot
    sent in frame k's tick. Advances ``dtmf``'s sample history and ``vad``'s state as feeding the
    frames one by one would: each frame must go through here exactly once."""
    n = len(frames)
    rejected: list[str | None] = [None] * n
    checked: list[Frame] = []
    for k, raw in enumerate(frames):
        try:
            checked.append(ensure_frame(raw, "caller frame"))
        except MediaError as exc:
            rejected[k] = str(exc)
            checked.append(SILENCE)
    sent, sizes = _valid_prompt_frames(prompt_frames) if prompt_frames is not None else ([], [0] * n)
    # Caller and prompt frames as one float64 block (exact for int16): one call per check.
    block = np.concatenate(checked + sent).reshape(-1, FRAME_SAMPLES)
    wide = block.astype(np.float64)
    all_powers = frame_powers(wide).tolist()
    powers, sent_powers = all_powers[:n], all_powers[n:]
    caller = wide[:n]
    clipped = (clipping_ratios(caller) > CLIP_SHARE).tolist() if max(powers) >= CLIP_POWER else [False] * n
    prompt_powers: list[list[float]] = []
    used = 0
    for size in sizes:
        prompt_powers.append(sent_powers[used : used + size])
        used += size
    return CallerBlock(
        frames=checked,
        rejected=rejected,
        powers=powers,
        clipped=clipped,
        keys=dtmf.analyse(caller) if dtmf is not None else None,
        voiced=vad.is_speech_batch(block[:n]),
        prompt_powers=prompt_powers,
    )


def _valid_prompt_frames(prompt_frames: Sequence[Sequence[Frame]]) -> tuple[list[Frame], list[int]]:
    """The valid prompt frames in order, and how many of them each caller frame's tick holds
    (a bad one is logged and skipped, as ``CallMediaPipeline.prompt_frame`` does)."""
    valid: list[Frame] = []
    sizes: list[int] = []
    for group in prompt_frames:
        before = len(valid)
        for frame in group:
            try:
                valid.append(ensure_frame(frame, "prompt frame"))
            except MediaError as exc:
                log_event("media.prompt_frame_rejected", logging.WARNING, _LOGGER, reason=str(exc))
        sizes.append(len(valid) - before)
    return valid, sizes
