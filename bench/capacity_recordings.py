"""What serve's recordings say about the calls: complete or not, intent understood, how much of
the caller's sentence the caller track kept, and how soon the bot replied after it."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench.capacity_serve import ROOT
from ivr.sipp_peer import require_tool


def list_recordings(data_dir: Path) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, str(ROOT / "run_ivr.py"), "recordings", "list", "--json", "--data-dir", data_dir],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=300,
    )
    return list(json.loads(out.stdout))


def complete(recordings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in recordings if r.get("status") == "complete"]


def speech_frames(samples: npt.NDArray[np.int16], skip_s: float = 0.5) -> int:
    """20 ms frames above -40 dBFS RMS within 3 s of the first one after ``skip_s``."""
    usable = samples[: samples.size // 160 * 160].astype(np.float64).reshape(-1, 160)
    active = np.sqrt((usable**2).mean(axis=1)) > 300.0
    active[: int(skip_s * 50)] = False
    onsets = np.flatnonzero(active)
    if onsets.size == 0:
        return 0
    return int(active[onsets[0] : onsets[0] + 150].sum())


def sent_speech_frames(caller_wav: Path) -> int:
    """The same count for what sipp sends (caller.wav is G.711; sox decodes it)."""
    raw = subprocess.run(
        [require_tool("sox", "sox"), str(caller_wav), "-t", "raw", "-e", "signed-integer", "-b", "16", "-"],
        capture_output=True,
        check=True,
    ).stdout
    return speech_frames(np.frombuffer(raw, dtype="<i2"))


def recorded_speech_frames(recording: dict[str, Any]) -> int:
    """The caller's (left) track of a stereo recording."""
    with wave.open(str(recording["path"])) as wav:
        data = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").reshape(-1, 2)
    return speech_frames(data[:, 0].copy())


def reply_latency_ms(recording: dict[str, Any]) -> float | None:
    """From the end of the caller's first turn to the start of the bot's next one (endpointing,
    recognition, the flow and the prompt's start), from the recording's transcript."""
    turns = recording.get("turns") or []
    caller = [t for t in turns if t.get("speaker") == "caller" and t.get("end_s") is not None]
    if not caller:
        return None
    end = float(caller[0]["end_s"])
    starts = [float(t["start_s"]) for t in turns if t.get("speaker") == "bot" and float(t["start_s"]) >= end]
    return (min(starts) - end) * 1000 if starts else None


@dataclass(frozen=True)
class CallerOutcomes:
    """The complete recordings of callers who each said the same sentence."""

    complete: int
    understood: int  # recording outcome ``understood``: the intent was right
    speech_kept_median: float  # caller's sentence in the recording, % of the frames sent
    speech_kept_min: float
    reply_ms: tuple[float, float]  # end of the caller's sentence -> the bot's reply starts: median, max


def caller_outcomes(recordings: list[dict[str, Any]], caller_wav: Path) -> CallerOutcomes:
    done = complete(recordings)
    sent = sent_speech_frames(caller_wav)
    kept = sorted(100.0 * recorded_speech_frames(r) / sent for r in done) or [0.0]
    replies = sorted(ms for ms in (reply_latency_ms(r) for r in done) if ms is not None) or [float("nan")]
    return CallerOutcomes(
        complete=len(done),
        understood=sum(1 for r in done if r.get("outcome") == "understood"),
        speech_kept_median=kept[len(kept) // 2],
        speech_kept_min=kept[0],
        reply_ms=(replies[len(replies) // 2], replies[-1]),
    )
