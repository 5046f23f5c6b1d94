"""A recorder SIGKILLed mid-call leaves a playable WAV that recovery seals as interrupted."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import time
import wave
from pathlib import Path

import pytest

from recordings import Catalog, recover_unfinished
from recordings.sidecar import read_sidecar

ROOT = Path(__file__).resolve().parents[3]

CHILD = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    import numpy as np
    from recordings import CallMetadata, DualTrackRecorder

    rec = DualTrackRecorder(Path(sys.argv[1]), "killed", CallMetadata(
        "inbound", "+4915112345678", "100", datetime.now(UTC), "hotline", "1"), flush_every_s=0.2)
    rec.add_turn("bot", "Welcome to the hotline.", 0.0, 1.2)
    rec.add_turn("caller", "I lost my card", 1.5, 2.4, 0.77)
    print("ready", flush=True)
    i = 0
    while True:  # ten times real time, until killed
        rec.push_caller(np.full(160, 1000 + i % 7, dtype=np.int16))
        rec.push_bot(np.full(160, -1000, dtype=np.int16))
        i += 1
        if i % 5 == 0:
            time.sleep(0.01)
    """
)


def header_frames(path: Path) -> int:
    """Open with the standard library, as any player would; fails if the header is invalid."""
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        frames = w.getnframes()
    assert 44 + frames * 4 <= path.stat().st_size
    return frames


@pytest.mark.component
def test_sigkill_mid_write_then_recover(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        sidecar = next(tmp_path.rglob("killed.json"))
        wav = sidecar.with_suffix(".wav")
        seen: list[int] = []
        deadline = time.monotonic() + 30
        while (not seen or seen[-1] < 3 * 8000) and time.monotonic() < deadline:
            seen.append(header_frames(wav))  # valid at every moment mid-write
            time.sleep(0.05)
        assert seen[-1] >= 3 * 8000, f"recorder too slow: {seen[-1]} frames in 30 s"
        assert sorted(seen) == seen
        assert recover_unfinished(tmp_path).live == (sidecar,)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    assert header_frames(wav) >= seen[-1]  # still valid after the kill, before any repair
    assert Catalog(tmp_path).find("killed").status == "interrupted"

    report = recover_unfinished(tmp_path)
    assert report.recovered == (sidecar,)
    assert report.problems == ()
    frames = header_frames(wav)
    assert 44 + frames * 4 == wav.stat().st_size
    sealed = read_sidecar(sidecar)
    assert sealed.status == "interrupted"
    assert sealed.duration_s == pytest.approx(frames / 8000)
    assert sealed.sha256 == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert [(t.speaker, t.text) for t in sealed.turns] == [
        ("bot", "Welcome to the hotline."),
        ("caller", "I lost my card"),
    ]
    assert Catalog(tmp_path).verify(Catalog(tmp_path).find("killed")).ok
