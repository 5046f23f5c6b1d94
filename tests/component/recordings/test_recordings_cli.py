"""``run_ivr.py recordings list|verify|show`` as an auditor runs them, in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)
CALLER = "+4915112345678"


def run_ivr(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    return subprocess.run(
        [sys.executable, str(ROOT / "run_ivr.py"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module", autouse=True)
def _cli_importable() -> None:
    """run_ivr.py imports every area's commands; until they all exist, only CI insists."""
    probe = run_ivr("--help")
    if probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr:
        missing = probe.stderr.strip().splitlines()[-1]
        if os.environ.get("CI") == "true":
            pytest.fail(f"run_ivr.py cannot start: {missing}")
        pytest.skip(f"run_ivr.py cannot start yet: {missing}")


def make_recording(data_dir: Path, call_id: str, minutes_later: int) -> Path:
    start = T0 + timedelta(minutes=minutes_later)
    rec = DualTrackRecorder(
        data_dir / "recordings",
        call_id,
        CallMetadata("inbound", CALLER, "sip:100@pbx", start, "hotline", "3"),
    )
    for i in range(100):
        rec.push_caller(np.full(FRAME_SAMPLES, 500, dtype=np.int16))
        if i < 40:
            rec.push_bot(np.full(FRAME_SAMPLES, -500, dtype=np.int16))
    rec.add_turn("bot", "Welcome, how can I help?", 0.0, 0.8)
    rec.add_turn("caller", "my balance please", 1.0, 1.9, 0.91)
    return rec.close(start + timedelta(seconds=2)).wav_path


@pytest.mark.component
def test_list_json_table_and_malformed_sidecar(tmp_path: Path) -> None:
    make_recording(tmp_path, "call-b", 5)
    wav_a = make_recording(tmp_path, "call-a", 0)
    (tmp_path / "recordings" / "broken.json").write_text('{"schema": 1}')

    result = run_ivr("recordings", "list", "--data-dir", str(tmp_path), "--json")
    assert result.returncode == 1, result.stderr  # one sidecar could not be read
    assert "broken.json: call_id: missing" in result.stderr
    calls = json.loads(result.stdout)
    assert [c["call_id"] for c in calls] == ["call-a", "call-b"]
    first = calls[0]
    assert first["path"] == str(wav_a)
    assert first["channels"] == 2
    assert first["channel_map"] == {"left": "caller", "right": "bot"}
    assert first["duration_s"] == 2.0
    assert first["status"] == "complete" and first["direction"] == "inbound" and first["flow"] == "hotline"
    assert first["started_at"] == "2024-05-01T09:30:00.000Z"
    assert [(t["speaker"], t["text"], t["start_s"]) for t in first["turns"]] == [
        ("bot", "Welcome, how can I help?", 0.0),
        ("caller", "my balance please", 1.0),
    ]
    assert len(first["sha256"]) == 64
    assert CALLER not in result.stdout

    table = run_ivr("recordings", "list", "--data-dir", str(tmp_path))
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["STARTED", "(UTC)", "CALL"]
    assert "call-a" in lines[1] and "2.0s" in lines[1] and "complete" in lines[1]


@pytest.mark.component
def test_verify_names_the_altered_file(tmp_path: Path) -> None:
    make_recording(tmp_path, "good", 0)
    bad = make_recording(tmp_path, "tampered", 1)
    ok = run_ivr("recordings", "verify", "--data-dir", str(tmp_path))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "2 of 2 recordings verified" in ok.stdout

    data = bytearray(bad.read_bytes())
    data[1000] ^= 0x10
    bad.write_bytes(bytes(data))
    result = run_ivr("recordings", "verify", "--data-dir", str(tmp_path))
    assert result.returncode == 1
    assert f"FAILED {bad}: SHA-256 mismatch" in result.stdout
    assert "OK " in result.stdout and "good.wav" in result.stdout

    one = run_ivr("recordings", "verify", "good", "--data-dir", str(tmp_path))
    assert one.returncode == 0 and "1 of 1 recordings verified" in one.stdout
    missing = run_ivr("recordings", "verify", "nope", "--data-dir", str(tmp_path))
    assert missing.returncode == 2 and "no recording of call 'nope'" in missing.stderr


@pytest.mark.component
def test_show_prints_per_speaker_transcript(tmp_path: Path) -> None:
    make_recording(tmp_path, "call-s", 0)
    result = run_ivr("recordings", "show", "call-s", "--data-dir", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert "flow:         hotline" in result.stdout
    transcript = [line for line in result.stdout.splitlines() if line.startswith("[")]
    assert transcript == [
        "[   0.00 -    0.80]    bot: Welcome, how can I help?",
        "[   1.00 -    1.90] caller: my balance please (0.91)",
    ]
    shown = run_ivr("recordings", "show", "call-s", "--json", "--data-dir", str(tmp_path))
    as_json = json.loads(shown.stdout)
    assert as_json["call_id"] == "call-s"
