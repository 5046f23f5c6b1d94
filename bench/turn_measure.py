"""Turn latency read from a stereo call recording (left caller, right bot) and its sidecar.

The recording is the ground truth a caller hears: a turn's latency is the time from the end of
the caller's speech energy to the start of the bot's next speech energy. The sidecar's per-turn
marks (``speech_end_s, decided_s, asr_final_s, reply_start_s``) say where that time went; this
module lines the two up. Pure: arrays and dicts in, figures out (the bench does the I/O).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

WINDOW_S = 0.01  # energy is judged per 10 ms, so an edge is placed to within 10 ms
THRESHOLD = 300.0  # RMS of int16 samples, about -40 dBFS: espeak-ng speech is far above it
MERGE_GAP_S = 0.3  # pauses between words are shorter; the engine ends a turn after 300 ms
MIN_SEGMENT_S = 0.05  # shorter bursts are clicks, not speech
MAX_REPLY_S = 5.0  # a bot start later than this after the caller stopped is not a reply
MARK_TOLERANCE_S = 0.5  # sidecar reply start to the bot's audible start, at most
MARK_KEYS = ("speech_end_s", "decided_s", "asr_final_s", "reply_start_s")


@dataclass(frozen=True)
class Segment:
    """A stretch of speech energy on one channel, seconds from the start of the recording."""

    start_s: float
    end_s: float


def energy_segments(
    samples: npt.NDArray[np.int16],
    rate: int = 8000,
    *,
    window_s: float = WINDOW_S,
    threshold: float = THRESHOLD,
    merge_gap_s: float = MERGE_GAP_S,
    min_segment_s: float = MIN_SEGMENT_S,
) -> list[Segment]:
    """Windows whose RMS is above ``threshold``, joined across pauses up to ``merge_gap_s``;
    segments shorter than ``min_segment_s`` dropped. A trailing partial window is ignored."""
    if samples.ndim != 1:
        raise ValueError(f"energy_segments: expected one channel (1-D samples), got shape {samples.shape}")
    width = round(rate * window_s)
    if rate <= 0 or width < 1:
        raise ValueError(f"energy_segments: rate {rate} Hz with {window_s} s windows gives no samples")
    usable = samples[: samples.size // width * width].astype(np.float64).reshape(-1, width)
    active = np.sqrt((usable**2).mean(axis=1)) > threshold
    edges = np.flatnonzero(np.diff(np.concatenate([[0], active.astype(np.int8), [0]])))
    runs = [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]
    step = width / rate
    merged: list[list[float]] = []
    for first, last in runs:
        start, end = first * step, last * step
        if merged and start - merged[-1][1] <= merge_gap_s + 1e-9:
            merged[-1][1] = end
        else:
            merged.append([start, end])
    return [Segment(round(s, 6), round(e, 6)) for s, e in merged if e - s >= min_segment_s - 1e-9]


@dataclass(frozen=True)
class EnergyTurn:
    """The caller stopped at ``caller_end_s``; the bot's reply became audible at ``bot_start_s``."""

    caller_end_s: float
    bot_start_s: float

    @property
    def latency_ms(self) -> float:
        return 1000.0 * (self.bot_start_s - self.caller_end_s)


def pair_turns(
    caller: Sequence[Segment], bot: Sequence[Segment], max_reply_s: float = MAX_REPLY_S
) -> list[EnergyTurn]:
    """Each caller segment followed by a bot reply: the first bot segment starting after the
    caller stopped. Left out: the bot was already speaking when the caller stopped (talk-over,
    no reply to measure), the caller spoke again before the bot did (the turn went on), or
    the bot stayed silent for ``max_reply_s``."""
    turns: list[EnergyTurn] = []
    for index, said in enumerate(caller):
        if any(b.start_s < said.end_s < b.end_s for b in bot):
            continue
        reply = next((b for b in bot if b.start_s >= said.end_s), None)
        if reply is None or reply.start_s - said.end_s > max_reply_s:
            continue
        following = caller[index + 1] if index + 1 < len(caller) else None
        if following is not None and following.start_s < reply.start_s:
            continue
        turns.append(EnergyTurn(said.end_s, reply.start_s))
    return turns


@dataclass(frozen=True)
class Marks:
    """One bot reply's latency marks from the sidecar (seconds on the recording's clock)."""

    speech_end_s: float
    decided_s: float
    asr_final_s: float
    reply_start_s: float
    text: str
    end_s: float  # when the reply stopped playing

    def span_ms(self, start: str, end: str) -> float:
        return 1000.0 * (float(getattr(self, end)) - float(getattr(self, start)))


def sidecar_marks(turns: Sequence[Mapping[str, Any]]) -> list[Marks]:
    """The bot turns of a sidecar (or ``recordings list --json`` entry) that carry every mark."""
    found: list[Marks] = []
    for turn in turns:
        latency = turn.get("latency")
        if turn.get("speaker") != "bot" or not isinstance(latency, Mapping):
            continue
        if not all(isinstance(latency.get(k), int | float) for k in MARK_KEYS):
            continue
        values = [float(latency[k]) for k in MARK_KEYS]
        if not all(map(math.isfinite, values)):
            continue
        speech_end, decided, final, reply = values
        text, end = str(turn.get("text", "")), float(turn.get("end_s") or 0.0)
        found.append(Marks(speech_end, decided, final, reply, text, end))
    return found


def match_marks(
    turn: EnergyTurn, marks: Sequence[Marks], tolerance_s: float = MARK_TOLERANCE_S
) -> Marks | None:
    """The reply whose first frame left at most ``tolerance_s`` before the bot became audible
    (a prompt may open with a little silence). One frame of slack the other way: the recorder
    may place the bot's audio a frame before the core counted it (seen: 8.86 s vs 8.88 s)."""
    near = [m for m in marks if -0.025 <= turn.bot_start_s - m.reply_start_s <= tolerance_s]
    return min(near, key=lambda m: turn.bot_start_s - m.reply_start_s, default=None)


def first_pause_s(bot: Sequence[Segment], start_s: float, end_s: float, min_gap_s: float = 0.15) -> float:
    """The first silence of at least ``min_gap_s`` between the bot's speech segments (taken
    unmerged) within [start_s, end_s]; 0.0 when there is none. In a prompt played piece by
    piece this is the pause after its first piece: where the next piece was not rendered in
    time, the caller hears it as a longer pause there."""
    inside = [s for s in bot if s.end_s > start_s and s.start_s < end_s]
    gaps = (b.start_s - a.end_s for a, b in itertools.pairwise(inside))
    return next((gap for gap in gaps if gap >= min_gap_s - 1e-9), 0.0)


@dataclass(frozen=True)
class Stats:
    n: int
    p50: float
    p95: float
    max: float

    def cells(self, fmt: str = "{:.0f}") -> str:
        if not self.n:
            return "-"
        return " / ".join(fmt.format(v) for v in (self.p50, self.p95, self.max))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (a value that occurred): the smallest value with at least q % of
    the values at or below it."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 < q <= 100:
        raise ValueError(f"percentile {q} is not in (0, 100]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def stats(values: Sequence[float]) -> Stats:
    if not values:
        return Stats(0, math.nan, math.nan, math.nan)
    return Stats(len(values), percentile(values, 50), percentile(values, 95), max(values))
