"""recover_unfinished seals dead recordings and leaves live ones alone."""

from __future__ import annotations

import hashlib
import wave
from datetime import UTC, datetime
from pathlib import Path

from recordings import CallMetadata, DualTrackRecorder, recover_unfinished
from recordings.recovery import UNFINISHED_DIR, mark_unfinished
from recordings.sidecar import Pause, Sidecar, Turn, read_sidecar, write_sidecar
from recordings.wav_writer import wav_header

T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)


def dead_recording(root: Path, call_id: str, frames_on_disk: int, frames_in_header: int,
                   folder: str = "") -> Path:
    """What a recorder killed mid-call leaves: stale header, half a sample, registered as live."""
    (root / folder).mkdir(parents=True, exist_ok=True)
    wav = root / folder / f"{call_id}.wav"
    audio = b"\x01\x00\xff\xff" * frames_on_disk + b"\x07"  # and half a sample more
    wav.write_bytes(wav_header(frames_in_header * 4, 2, 8000) + audio)
    sidecar = Sidecar(call_id, "inbound", "***78", "***", T0, wav.name, flow_name="hotline",
                      turns=(Turn("caller", "my card number is", 0.5, 1.5, 0.9),),
                      pauses=(Pause(1.5, None, "card number"),))
    write_sidecar(root / folder / f"{call_id}.json", sidecar, durable=False)
    (root / folder / f".{call_id}.json.tmp").write_text("{")  # a rewrite cut short
    mark_unfinished(root, call_id, root / folder / f"{call_id}.json")
    return wav


def test_dead_recording_is_repaired_hashed_and_sealed(tmp_path: Path) -> None:
    wav = dead_recording(tmp_path, "dead", frames_on_disk=16000, frames_in_header=8000, folder="2024")
    report = recover_unfinished(tmp_path)
    assert report.recovered == (tmp_path / "2024" / "dead.json",)
    assert report.problems == ()
    with wave.open(str(wav), "rb") as w:
        assert w.getnframes() == 16000
    sealed = read_sidecar(tmp_path / "2024" / "dead.json")
    assert sealed.status == "interrupted"
    assert sealed.duration_s == 2.0
    assert sealed.ended_at is not None and (sealed.ended_at - T0).total_seconds() == 2.0
    assert sealed.sha256 == hashlib.sha256(wav.read_bytes()).hexdigest()
    assert [t.text for t in sealed.turns] == ["my card number is"]
    assert sealed.pauses == (Pause(1.5, 2.0, "card number"),)
    assert not (tmp_path / "2024" / ".dead.json.tmp").exists()
    assert list((tmp_path / UNFINISHED_DIR).iterdir()) == []
    assert recover_unfinished(tmp_path).recovered == ()  # second run: nothing to do


def test_live_recording_is_left_alone(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "live", CallMetadata("inbound", "1", "2", T0))
    report = recover_unfinished(tmp_path)
    assert report.live == (rec.sidecar_path,)
    assert report.recovered == ()
    assert read_sidecar(rec.sidecar_path).status == "recording"
    rec.close(T0)
    assert list((tmp_path / UNFINISHED_DIR).iterdir()) == []


def test_default_run_reads_only_registered_recordings(tmp_path: Path) -> None:
    unregistered = dead_recording(tmp_path, "old", frames_on_disk=10, frames_in_header=0)
    (tmp_path / UNFINISHED_DIR / "old").unlink()
    assert recover_unfinished(tmp_path).recovered == ()
    assert read_sidecar(unregistered.with_suffix(".json")).status == "recording"
    assert recover_unfinished(tmp_path, full_scan=True).recovered == (unregistered.with_suffix(".json"),)


def test_marker_without_sidecar_is_reported_and_cleared(tmp_path: Path) -> None:
    mark_unfinished(tmp_path, "ghost", tmp_path / "ghost.json")
    report = recover_unfinished(tmp_path)
    missing = tmp_path / "ghost.json"
    assert report.problems == (f"{missing}: registered as recording but the sidecar is missing",)
    assert list((tmp_path / UNFINISHED_DIR).iterdir()) == []


def test_problems_are_reported_per_file_and_others_still_recovered(tmp_path: Path) -> None:
    dead_recording(tmp_path, "ok", frames_on_disk=100, frames_in_header=0)
    (tmp_path / "junk.json").write_text("not json")
    write_sidecar(tmp_path / "nowav.json", Sidecar("nowav", "inbound", "*", "*", T0, "nowav.wav"))
    (tmp_path / "orphan.wav").write_bytes(wav_header(0, 2, 8000))
    report = recover_unfinished(tmp_path, full_scan=True)
    assert report.recovered == (tmp_path / "ok.json",)
    assert len(report.problems) == 3
    joined = "\n".join(report.problems)
    assert "junk.json: invalid JSON" in joined
    assert "nowav.wav: audio file is missing" in joined
    assert "orphan.wav: no sidecar describes this recording" in joined
    assert read_sidecar(tmp_path / "nowav.json").status == "recording"
