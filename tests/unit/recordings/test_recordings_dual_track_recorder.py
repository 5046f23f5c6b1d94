"""What a finished recording and its sidecar contain."""

from __future__ import annotations

import hashlib
import json
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from media.frames import FRAME_SAMPLES, Frame
from recordings import CallMetadata, DualTrackRecorder, RecordingError
from recordings.qa_check import evaluate
from recordings.qa_rules_loader import parse_rules
from recordings.sidecar import read_sidecar

T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)
CALLER = "+4915112345678"


def tone(value: int) -> Frame:
    return np.full(FRAME_SAMPLES, value, dtype=np.int16)


def metadata(**changes: object) -> CallMetadata:
    base: dict[str, object] = {
        "direction": "inbound",
        "from_number": CALLER,
        "to_number": "sip:100@10.0.0.1",
        "started_at": T0,
        "flow_name": "hotline",
        "flow_version": "7",
        "tags": {"campaign": "c1"},
    }
    base.update(changes)
    return CallMetadata(**base)  # type: ignore[arg-type]


def read_channels(path: Path) -> tuple[np.ndarray, np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (2, 2, 8000)
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    return data[:, 0], data[:, 1], data.shape[0]


def test_recording_and_sidecar_contents(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "call-42", metadata())
    for i in range(150):  # 3 s of caller audio; the bot speaks only during the first second
        rec.push_caller(tone(1000))
        if i < 50:
            rec.push_bot(tone(-2000))
    rec.add_turn("bot", "Welcome. How can I help?", 0.0, 1.0)
    rec.add_turn("caller", "check my balance", 1.2, 2.6, 0.87)
    info = rec.close(T0 + timedelta(seconds=3.0))

    left, right, frames = read_channels(info.wav_path)
    assert frames == 3 * 8000 == round(info.duration_s * 8000)
    assert (left == 1000).all()
    assert (right[:8000] == -2000).all() and (right[8000:] == 0).all()
    assert info.sha256 == hashlib.sha256(info.wav_path.read_bytes()).hexdigest()

    raw = json.loads(info.sidecar_path.read_text())
    assert raw["call_id"] == "call-42"
    assert raw["status"] == "complete"
    assert raw["direction"] == "inbound"
    assert raw["from"] == "+***********78" and CALLER not in info.sidecar_path.read_text()
    assert raw["to"] == "sip:***@10.0.0.1"
    assert raw["started_at"] == "2024-05-01T09:30:00.000Z"
    assert raw["ended_at"] == "2024-05-01T09:30:03.000Z"
    assert raw["connected_duration_s"] == 3.0 and raw["duration_s"] == 3.0
    assert raw["flow"] == {"name": "hotline", "version": "7"}
    assert raw["channels"] == {"left": "caller", "right": "bot"}
    assert raw["sample_rate"] == 8000
    assert raw["sha256"] == info.sha256
    assert raw["turns"] == [
        {
            "speaker": "bot",
            "text": "Welcome. How can I help?",
            "start_s": 0.0,
            "end_s": 1.0,
            "confidence": None,
        },
        {"speaker": "caller", "text": "check my balance", "start_s": 1.2, "end_s": 2.6, "confidence": 0.87},
    ]
    assert raw["tags"] == {"campaign": "c1"}
    assert not list(tmp_path.glob(".*.tmp"))
    assert rec.close(T0 + timedelta(seconds=9)) is info  # idempotent


def test_file_is_padded_to_connected_duration(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "short", metadata())
    for _ in range(10):
        rec.push_caller(tone(5))
    info = rec.close(T0 + timedelta(seconds=2.0))
    _, _, frames = read_channels(info.wav_path)
    assert frames == 16000
    assert abs(info.duration_s - 2.0) <= 0.04


def test_frames_beyond_the_connected_duration_are_trimmed(tmp_path: Path) -> None:
    """The media clock can deliver a few ticks more than the call lasted (catching up after
    running late); the file still is the connected call, from its first frame."""
    rec = DualTrackRecorder(tmp_path, "burst", metadata(), flush_every_s=0.5)
    for i in range(104):  # 2.08 s of ticks for a call connected 2.00 s
        rec.push_caller(tone(i + 1))
        rec.push_bot(tone(-(i + 1)))
    info = rec.close(T0 + timedelta(seconds=2.0))
    left, right, frames = read_channels(info.wav_path)
    assert frames == 16000 and info.duration_s == 2.0
    assert left[0] == 1 and left[-1] == 100 and right[-1] == -100
    assert info.sha256 == hashlib.sha256(info.wav_path.read_bytes()).hexdigest()


def test_tick_fills_a_stall_with_silence(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "stall", metadata(), flush_every_s=0.1)
    rec.push_caller(tone(9))
    rec.push_bot(tone(9))
    rec.tick(T0 + timedelta(seconds=1.0))
    assert rec.position_s == pytest.approx(0.8)  # 1 s minus the 200 ms clock slack
    info = rec.close(T0 + timedelta(seconds=1.0))
    left, right, frames = read_channels(info.wav_path)
    assert frames == 8000
    assert (left[:160] == 9).all() and (left[160:] == 0).all() and (right[160:] == 0).all()


def test_pause_mutes_both_channels_and_is_in_the_sidecar(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "pci", metadata())
    for _ in range(50):
        rec.push_caller(tone(1))
        rec.push_bot(tone(2))
    rec.pause("card number")
    for _ in range(25):
        rec.push_caller(tone(3))
        rec.push_bot(tone(4))
    rec.resume()
    for _ in range(25):
        rec.push_caller(tone(5))
        rec.push_bot(tone(6))
    info = rec.close(T0 + timedelta(seconds=2))
    left, right, _ = read_channels(info.wav_path)
    assert set(np.unique(left)) == {0, 1, 5} and set(np.unique(right)) == {0, 2, 6}
    assert (left[8000:12000] == 0).all() and (right[8000:12000] == 0).all()
    pauses = read_sidecar(info.sidecar_path).pauses
    assert [(p.start_s, p.end_s, p.reason) for p in pauses] == [(1.0, 1.5, "card number")]


def test_transcript_survives_on_disk_before_close(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "live", metadata())
    rec.add_turn("caller", "hello", 0.5, 1.0, 0.9)
    on_disk = read_sidecar(rec.sidecar_path)
    assert on_disk.status == "recording"
    assert [t.text for t in on_disk.turns] == ["hello"]
    rec.close(T0)


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (("robot", "x", 0.0, 1.0, None), "speaker 'robot' is not one of caller, bot, agent"),
        (("caller", "x", 2.0, 1.0, None), r"times must satisfy 0 <= start_s <= end_s, got 2.0..1.0"),
        (("caller", "x", -1.0, 1.0, None), r"times must satisfy 0 <= start_s <= end_s"),
        (("caller", "x", 0.0, float("nan"), None), r"times must satisfy 0 <= start_s <= end_s"),
        (("caller", "x", 0.0, 1.0, 1.5), r"confidence must be within 0..1, got 1.5"),
    ],
)
def test_bad_turn_is_refused_and_earlier_turns_are_kept(
    tmp_path: Path, args: tuple[str, str, float, float, float | None], problem: str
) -> None:
    rec = DualTrackRecorder(tmp_path, "bad-turn", metadata())
    rec.add_turn("bot", "kept", 0.0, 0.5)
    with pytest.raises(RecordingError, match=rf"call bad-turn: turn 1: {problem}"):
        rec.add_turn(*args)
    info = rec.close(T0 + timedelta(seconds=1))
    assert [t.text for t in read_sidecar(info.sidecar_path).turns] == ["kept"]


def test_refusals_before_anything_is_created(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match=r"call id '\.\./x' cannot name a recording file"):
        DualTrackRecorder(tmp_path, "../x", metadata())
    with pytest.raises(RecordingError, match="has no time zone"):
        DualTrackRecorder(tmp_path, "naive", metadata(started_at=datetime(2024, 1, 1)))
    with pytest.raises(RecordingError, match="direction 'sideways'"):
        DualTrackRecorder(tmp_path, "dir", metadata(direction="sideways"))
    assert list(tmp_path.iterdir()) == []


def test_second_recording_of_same_call_does_not_clobber_the_first(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "dup", metadata())
    rec.push_caller(tone(1))
    first = rec.close(T0 + timedelta(seconds=1))
    with pytest.raises(RecordingError, match="already exists"):
        DualTrackRecorder(tmp_path, "dup", metadata())
    assert hashlib.sha256(first.wav_path.read_bytes()).hexdigest() == first.sha256
    with pytest.raises(RecordingError, match="already closed"):
        rec.push_bot(tone(1))


def test_a_barged_in_turn_is_marked_interrupted_and_read_back(tmp_path: Path) -> None:
    """Only the interrupted turn carries the mark; QA (docs/qa.md) reads it as a barge-in."""
    rec = DualTrackRecorder(tmp_path, "call-b", metadata())
    for _ in range(100):
        rec.push_caller(tone(10))
        rec.push_bot(tone(-10))
    rec.add_turn("bot", "Calls are recorded for quality and training.", 0.0, 0.8, interrupted=True)
    rec.add_turn("caller", "agent", 0.7, 1.2, 0.9)
    info = rec.close(T0 + timedelta(seconds=2))

    raw = json.loads(info.sidecar_path.read_text())
    assert raw["turns"][0]["interrupted"] is True
    assert "interrupted" not in raw["turns"][1]
    sidecar = read_sidecar(info.sidecar_path)
    assert [turn.interrupted for turn in sidecar.turns] == [True, False]
    assert json.loads(json.dumps(sidecar.to_json())) == raw  # written back byte-for-byte alike

    rules = parse_rules(
        "qa: {name: notice}\nrules:\n  - id: notice\n    kind: required_prompt\n    barge_in: allowed\n"
        "    text: Calls are recorded for quality and training.\n",
        "notice.yaml",
    )
    (result,) = evaluate(rules, sidecar).results
    assert result.status == "fail" and "cut off at 0.80s (barge-in)" in result.detail


def test_interrupted_in_a_sidecar_must_be_true_or_false(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "call-c", metadata())
    rec.add_turn("bot", "Hello", 0.0, 0.5)
    info = rec.close(T0 + timedelta(seconds=1))
    raw = json.loads(info.sidecar_path.read_text())
    raw["turns"][0]["interrupted"] = "yes"
    info.sidecar_path.write_text(json.dumps(raw))
    with pytest.raises(RecordingError, match=r"turns\[0\]\.interrupted: expected"):
        read_sidecar(info.sidecar_path)


def test_a_replys_delay_marks_are_kept_and_shown(tmp_path: Path) -> None:
    rec = DualTrackRecorder(tmp_path, "call-l", metadata())
    marks = {"speech_end_s": 1.0, "decided_s": 1.3, "asr_final_s": 1.34, "reply_start_s": 1.412}
    rec.add_turn("caller", "balance", 0.4, 1.0, 0.9)
    rec.add_turn("bot", "Your balance is ten dollars.", 1.412, 2.5, latency=marks)
    with pytest.raises(RecordingError, match="latency marks"):
        rec.add_turn("bot", "x", 3.0, 3.1, latency={"typo_s": 1.0})
    info = rec.close(T0 + timedelta(seconds=3))
    reply = read_sidecar(info.sidecar_path).turns[1]
    assert reply.latency == marks
    assert reply.describe().endswith("[reply 412 ms: end of turn +300, recognizer +40, audio +72]")
    raw = json.loads(info.sidecar_path.read_text())
    raw["turns"][1]["latency"]["typo_s"] = 1.0
    info.sidecar_path.write_text(json.dumps(raw))
    with pytest.raises(RecordingError, match=r"turns\[1\]\.latency\.typo_s"):
        read_sidecar(info.sidecar_path)
