"""How much a recording costs per call: aligner, recorder (per 20 ms tick and at close), catalog scan.

Run: .venv/bin/python bench/bench_recordings.py  (about 10-20 s; writes under a temp dir)
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, Catalog, DualTrackRecorder, recover_unfinished
from recordings.track_aligner import TrackAligner

CALL_S = 180  # a 3-minute call
FRAMES = CALL_S * 50
T0 = datetime(2024, 5, 1, tzinfo=UTC)


def frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    audio = rng.integers(-3000, 3000, size=n * FRAME_SAMPLES, dtype=np.int16)
    return [audio[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES] for i in range(n)]


def bench_aligner(caller: list[np.ndarray], bot: list[np.ndarray]) -> float:
    aligner = TrackAligner()
    start = time.perf_counter()
    for i in range(FRAMES):
        aligner.push_caller(caller[i])
        if i % 3:  # the bot is silent a third of the time
            aligner.push_bot(bot[i])
        if i % 5 == 0:
            aligner.pull()
    aligner.finish()
    return (time.perf_counter() - start) / FRAMES * 1e6


def bench_call(
    root: Path, call_id: str, caller: list[np.ndarray], bot: list[np.ndarray]
) -> tuple[float, float]:
    meta = CallMetadata("inbound", "+4915112345678", "100", T0, "hotline", "1")
    rec = DualTrackRecorder(root, call_id, meta, partition_by_date=False)
    start = time.perf_counter()
    for i in range(FRAMES):
        rec.push_caller(caller[i])
        rec.push_bot(bot[i])
        if i % 250 == 0:
            rec.add_turn("caller", "some words the caller said", i / 50, i / 50 + 2, 0.8)
    per_tick = (time.perf_counter() - start) / FRAMES * 1e6
    start = time.perf_counter()
    rec.close(T0 + timedelta(seconds=CALL_S))
    return per_tick, (time.perf_counter() - start) * 1e3


def main() -> None:
    caller, bot = frames(FRAMES, 1), frames(FRAMES, 2)
    root = Path(tempfile.mkdtemp(prefix="bench-recordings-"))
    try:
        aligner_us = bench_aligner(caller, bot)
        ticks, closes = [], []
        for n in range(5):
            per_tick, close_ms = bench_call(root / "calls", f"call-{n}", caller, bot)
            ticks.append(per_tick)
            closes.append(close_ms)
        tick_us = float(np.median(ticks))
        close_ms = float(np.median(closes))
        # A catalog of many short calls: copy one sidecar+wav pair under new names.
        many = root / "many"
        many.mkdir()
        src = root / "calls" / "call-0"
        text = src.with_suffix(".json").read_text()
        for n in range(2000):
            name = f"c{n:05d}"
            (many / f"{name}.json").write_text(text.replace('"call-0', f'"{name}'))
            (many / f"{name}.wav").write_bytes(b"")
        start = time.perf_counter()
        scan = Catalog(many).scan()
        scan_ms = (time.perf_counter() - start) * 1e3
        assert len(scan.entries) == 2000 and not scan.errors
        start = time.perf_counter()
        recover_unfinished(many)
        recover_noop_ms = (time.perf_counter() - start) * 1e3
        start = time.perf_counter()
        recover_unfinished(many, full_scan=True)
        recover_full_ms = (time.perf_counter() - start) * 1e3
    finally:
        shutil.rmtree(root)
    budget_calls = 20_000 / tick_us
    print(f"aligner push+pull per 20 ms tick:          {aligner_us:8.1f} us")
    print(f"recorder per 20 ms tick (both sides, I/O): {tick_us:8.1f} us"
          f"  -> {budget_calls:,.0f} calls per core")
    print(f"close of a {CALL_S} s call (fsync + SHA-256):  {close_ms:8.1f} ms")
    print(f"catalog scan, 2000 sidecars:               {scan_ms:8.1f} ms")
    print(f"recover_unfinished, 2000 sealed sidecars:  {recover_noop_ms:8.1f} ms (markers only)")
    print(f"recover_unfinished(full_scan=True), 2000:  {recover_full_ms:8.1f} ms")


if __name__ == "__main__":
    main()
