"""Listing, finding and verifying recordings; malformed sidecars are named and skipped."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, Catalog, DualTrackRecorder, RecordingError, SidecarError
from recordings.sidecar import Sidecar, read_sidecar, write_sidecar
from recordings.wav_writer import wav_header

T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)


def record(root: Path, call_id: str, start: datetime = T0, seconds: int = 1) -> Path:
    rec = DualTrackRecorder(root, call_id, CallMetadata("outbound", "+4930123456", "+4915112345678", start,
                                                        "callback", "2"))
    for _ in range(seconds * 50):
        rec.push_caller(np.full(FRAME_SAMPLES, 7, dtype=np.int16))
    rec.add_turn("bot", "Hello, this is your bank.", 0.0, 0.8)
    return rec.close(start + timedelta(seconds=seconds)).wav_path


def test_scan_lists_calls_oldest_first_with_public_fields(tmp_path: Path) -> None:
    record(tmp_path / "2024" / "05", "b", T0 + timedelta(hours=1))
    record(tmp_path, "a", T0, seconds=2)
    scan = Catalog(tmp_path).scan()
    assert scan.errors == ()
    assert [e.call_id for e in scan.entries] == ["a", "b"]
    item = scan.entries[0].to_json()
    assert item["path"] == str(tmp_path / "2024" / "05" / "01" / "a.wav")  # partitioned by UTC day
    assert item["duration_s"] == 2.0
    assert item["channels"] == 2
    assert item["channel_map"] == {"left": "caller", "right": "bot"}
    assert item["status"] == "complete" and item["direction"] == "outbound"
    assert item["flow"] == "callback" and item["started_at"] == "2024-05-01T09:30:00.000Z"
    assert item["turns"][0]["speaker"] == "bot" and item["turns"][0]["start_s"] == 0.0
    assert len(item["sha256"]) == 64


def test_missing_directory_is_an_empty_catalog(tmp_path: Path) -> None:
    assert Catalog(tmp_path / "nope").scan().entries == ()


def good_sidecar(tmp_path: Path) -> dict[str, object]:
    record(tmp_path, "template")
    raw: dict[str, object] = json.loads((tmp_path / "2024/05/01/template.json").read_text())
    return raw


@pytest.mark.parametrize(
    ("mutate", "problem"),
    [
        (lambda raw: raw.pop("call_id"), r"bad.json: call_id: missing"),
        (lambda raw: raw.update(status="done"), r"bad.json: status: 'done' is not one of recording"),
        (lambda raw: raw.update(started_at="yesterday"), r"started_at: 'yesterday' is not an ISO 8601"),
        (lambda raw: raw.update(sha256="abc"), r"sha256: 'abc' is not a hex SHA-256"),
        (lambda raw: raw["turns"].append({"speaker": "bot", "text": 5, "start_s": 0, "end_s": 1}),
         r"turns\[1\]\.text: expected a string, got 5"),
        (lambda raw: raw.update(wav="../../etc/passwd"), r"wav: '../../etc/passwd' must be a file name"),
        (lambda raw: raw.update(schema=99), r"schema: version 99 is not supported"),
        (lambda raw: raw.update(flow=[]), r"flow: expected an object"),
    ],
)
def test_malformed_sidecar_is_named_and_listing_continues(
    tmp_path: Path, mutate: object, problem: str
) -> None:
    raw = good_sidecar(tmp_path)
    mutate(raw)  # type: ignore[operator]
    (tmp_path / "bad.json").write_text(json.dumps(raw))
    scan = Catalog(tmp_path).scan()
    assert [e.call_id for e in scan.entries] == ["template"]
    assert len(scan.errors) == 1
    with pytest.raises(SidecarError, match=problem):
        raise scan.errors[0]
    assert scan.errors[0].path == tmp_path / "bad.json"


def test_unparseable_json_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text('{\n  "call_id": "x",\n  oops\n}')
    with pytest.raises(SidecarError, match=r"broken.json: invalid JSON at line 3 column 3"):
        read_sidecar(path)


def test_verify_detects_a_changed_byte_and_a_missing_file(tmp_path: Path) -> None:
    wav = record(tmp_path, "audit")
    catalog = Catalog(tmp_path)
    entry = catalog.find("audit")
    assert catalog.verify(entry).ok
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0x01
    wav.write_bytes(bytes(data))
    result = catalog.verify(entry)
    assert not result.ok and "SHA-256 mismatch" in result.problem
    wav.unlink()
    assert catalog.verify(entry).problem == "audio file is missing"
    with pytest.raises(RecordingError, match="no recording of call 'other'"):
        catalog.find("other")


def test_dead_unrecovered_recording_is_interrupted_and_unverifiable(tmp_path: Path) -> None:
    (tmp_path / "dead.wav").write_bytes(wav_header(0, 2, 8000) + b"\x00" * 3200)
    write_sidecar(tmp_path / "dead.json", Sidecar("dead", "inbound", "***", "***", T0, "dead.wav"))
    catalog = Catalog(tmp_path)
    entry = catalog.find("dead")
    assert entry.status == "interrupted"
    assert entry.duration_s == 0.0  # the stale header says nothing was written
    result = catalog.verify(entry)
    assert not result.ok and "not recovered" in result.problem


def test_live_recording_is_listed_as_recording_and_skipped_by_verify(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "live", CallMetadata("inbound", "1", "2", T0))
    catalog = Catalog(tmp_path)
    entry = catalog.find("live")
    assert entry.status == "recording"
    assert catalog.verify(entry).skipped
    rec.close(T0)
    assert catalog.find("live").status == "complete"
