"""The turn-latency bench's calls: per voice a fresh ``serve`` on the demo flow, sipp callers who
each say one sentence in that voice, and what their recordings say about each turn.

Every voice gets its own serve with an empty TTS cache: serve pre-renders the flow's static
prompts and the fixed pieces of its templates at start, so the first read-back of each
recognized sentence renders its value piece while the caller listens (uncached), and later ones
find it cached. Sentences run one sipp run after another (sipp streams one caller.wav per run);
a call belongs to the run during which it started.
"""

from __future__ import annotations

import wave
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.capacity_parts import AFTER_QUESTION_S, CALLER_SCENARIO
from bench.capacity_recordings import complete, list_recordings
from bench.capacity_serve import Workspace, loadavg
from bench.capacity_sipp import run_sipp
from bench.turn_measure import (
    Marks,
    energy_segments,
    first_pause_s,
    match_marks,
    pair_turns,
    sidecar_marks,
)
from ivr.sipp_peer import synthesize_caller_audio

VOICES = ("en-us", "en-gb", "en-us+f3", "en-us+m3")
SENTENCES = ("I want to check my balance", "I lost my card", "what are your opening hours")
READBACK = "I heard:"  # how the demo flow's templated read-back starts


@dataclass(frozen=True)
class TurnSample:
    """One caller turn and the bot's reply to it."""

    voice: str
    sentence: str
    call_id: str
    latency_ms: float  # caller energy end -> bot energy start, from the recording
    marks: Marks | None  # the reply's sidecar marks, when they line up with the audio
    caller_end_s: float
    bot_start_s: float
    readback: bool = False  # the reply is the templated "I heard: ..." read-back
    uncached: bool = False  # ... and the first one of its text in this serve: its value was rendered
    pause_s: float = 0.0  # read-backs: the pause after the first piece ("I heard:")

    def span_ms(self, start: str, end: str) -> float | None:
        """Between two marks; ``caller_end``/``bot_start`` name the energy edges."""
        if self.marks is None:
            return None
        edges = {"caller_end": self.caller_end_s, "bot_start": self.bot_start_s}
        first = edges[start] if start in edges else float(getattr(self.marks, start))
        last = edges[end] if end in edges else float(getattr(self.marks, end))
        return 1000.0 * (last - first)


@dataclass
class VoiceRun:
    voice: str
    calls: int = 0
    failed: int = 0
    complete: int = 0
    understood: int = 0
    unpaired: int = 0  # complete recordings where no turn could be measured
    samples: list[TurnSample] = field(default_factory=list)
    load: str = ""
    notes: list[str] = field(default_factory=list)


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    """Caller (left) and bot (right) samples of a recording, and its sample rate."""
    with wave.open(str(path)) as wav:
        if wav.getnchannels() != 2 or wav.getsampwidth() != 2:
            raise ValueError(f"{path}: expected a 16-bit stereo WAV, got {wav.getnchannels()} channel(s)")
        rate = wav.getframerate()
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return data[:, 0].copy(), data[:, 1].copy(), rate


def recording_samples(recording: dict[str, Any], voice: str, sentence: str) -> list[TurnSample]:
    """Every measurable turn of one recording, with its sidecar marks where they line up."""
    caller, bot, rate = read_stereo(Path(recording["path"]))
    bot_segments = energy_segments(bot, rate)
    fine = energy_segments(bot, rate, merge_gap_s=0.0, min_segment_s=0.0)  # every pause kept
    marks = sidecar_marks(recording.get("turns") or [])
    samples = []
    for turn in pair_turns(energy_segments(caller, rate), bot_segments):
        found = match_marks(turn, marks)
        readback = found is not None and found.text.startswith(READBACK)
        pause = first_pause_s(fine, turn.bot_start_s, found.end_s) if found and readback else 0.0
        samples.append(
            TurnSample(
                voice,
                sentence,
                str(recording["call_id"]),
                turn.latency_ms,
                found,
                turn.caller_end_s,
                turn.bot_start_s,
                readback=readback,
                pause_s=pause,
            )
        )
    return samples


def mark_uncached(samples: list[TurnSample], started: dict[str, datetime]) -> list[TurnSample]:
    """Flag the first read-back of each text in one serve (by when its reply started)."""
    seen: set[str] = set()

    def when(s: TurnSample) -> float:
        return started[s.call_id].timestamp() + s.bot_start_s

    out = []
    for sample in sorted(samples, key=when):
        text = sample.marks.text if sample.marks is not None else ""
        first = sample.readback and text not in seen
        seen.add(text)
        out.append(replace(sample, uncached=True) if first else sample)
    return out


def voice_run(
    ws: Workspace,
    voice: str,
    sentences: Sequence[str],
    *,
    calls: int,
    concurrent: int,
    rate: float,
    log: Callable[[str], None],
) -> VoiceRun:
    """A fresh serve for ``voice``; ``calls`` callers per sentence, ``concurrent`` at once."""
    result = VoiceRun(voice)
    slug = voice.replace("+", "-")
    load_before = loadavg()
    windows: list[tuple[datetime, datetime, str]] = []
    with ws.serve(f"voice-{slug}", max_calls=max(8, 2 * concurrent), env={}) as serve:
        for number, sentence in enumerate(sentences):
            workdir = serve.folder / f"sipp-{number}"
            workdir.mkdir(parents=True, exist_ok=True)
            synthesize_caller_audio(
                sentence, workdir / "caller.wav", voice=voice, lead_s=AFTER_QUESTION_S, tail_s=30.0
            )
            begin = datetime.now(UTC)
            run = run_sipp(
                CALLER_SCENARIO,
                serve,
                workdir,
                calls=calls,
                concurrent=concurrent,
                rate=rate,
                timeout_s=calls / rate + 120,
            )
            offered = serve.events()["call.offered"]
            serve.wait_until(partial(serve.settled, offered), 60)
            windows.append((begin, datetime.now(UTC), sentence))
            result.calls += calls
            result.failed += run.failed(calls)
            if run.returncode not in (0, 1):
                result.notes.append(f"sipp exit {run.returncode} ({sentence!r})")
            log(f"  {voice} {sentence!r}: {run.ok} ok, {run.failed(calls)} failed, {run.elapsed_s:.0f} s")
        if not serve.running():
            result.notes.append(f"serve died ({serve.proc.returncode})")
    recordings = complete(list_recordings(serve.data_dir))
    result.complete = len(recordings)
    result.understood = sum(1 for r in recordings if r.get("outcome") == "understood")
    started: dict[str, datetime] = {}
    samples: list[TurnSample] = []
    for recording in recordings:
        at = datetime.fromisoformat(str(recording["started_at"]).replace("Z", "+00:00"))
        sentence = next((s for b, e, s in windows if b <= at <= e), "?")
        started[str(recording["call_id"])] = at
        found = recording_samples(recording, voice, sentence)
        result.unpaired += not found
        samples += found
    result.samples = mark_uncached(samples, started)
    result.load = f"{load_before} -> {loadavg()}"
    return result
