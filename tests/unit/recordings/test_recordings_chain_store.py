"""Sealing into a folder's chain: recorder and recovery append linked, signed, private manifests."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder, audit_archive, recover_unfinished
from recordings.chain_store import CHAIN_FILE, SealedFiles, append_manifest, chain_name, read_chain
from recordings.manifest import GENESIS, check_chain, entry_hash
from recordings.recovery import mark_unfinished
from recordings.sidecar import Sidecar, write_sidecar
from recordings.signing import Signer, TrustedKey, load_signer, load_trusted_key, public_key_path
from recordings.wav_writer import file_sha256, wav_header

T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)


def keys(key_file: Path) -> dict[str, TrustedKey]:
    key = load_trusted_key(public_key_path(key_file))
    return {key.key_id: key}


def record(root: Path, call_id: str, key_file: Path, minutes: int = 0) -> Path:
    start = T0 + timedelta(minutes=minutes)
    rec = DualTrackRecorder(root, call_id, CallMetadata("inbound", "+4915112345678", "100", start),
                            signing_key_file=key_file)
    for _ in range(25):
        rec.push_caller(np.full(FRAME_SAMPLES, 9, dtype=np.int16))
    rec.add_turn("caller", "hello", 0.0, 0.4, 0.9)
    return rec.close(start + timedelta(seconds=0.5), outcome="done").wav_path


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_recorder_seals_each_call_into_its_day_chain(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "k.pem"
    root = tmp_path / "recordings"
    wavs = [record(root, call, key_file, i) for i, call in enumerate(("a", "b", "c"))]
    day = root / "2024" / "05" / "01"
    stored = read_chain(day)
    assert stored.path == day / CHAIN_FILE and len(stored.lines) == 3 and not stored.torn_tail
    check = check_chain(stored.lines, "2024/05/01", keys(key_file))
    assert check.problems == ()
    first, second = (json.loads(line) for line in stored.lines[:2])
    assert (first["seq"], first["prev"], first["prev_call_id"]) == (1, GENESIS, "")
    assert (second["seq"], second["prev"], second["prev_call_id"]) == (2, entry_hash(stored.lines[0]), "a")
    assert first["wav_sha256"] == file_sha256(wavs[0]) and first["wav_bytes"] == wavs[0].stat().st_size
    assert first["sidecar_sha256"] == file_sha256(wavs[0].with_suffix(".json"))
    assert first["status"] == "complete" and first["key_id"] == load_signer(key_file).key_id
    assert not list((root / ".unfinished").iterdir())
    report = audit_archive(root, keys(key_file))
    assert report.failures == 0 and [c.call_id for c in report.calls] == ["a", "b", "c"]


def test_recordings_are_private_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        wav = record(tmp_path / "recordings", "p", tmp_path / "keys" / "k.pem")
    finally:
        os.umask(old)
    root = tmp_path / "recordings"
    for folder in (root, root / "2024", root / "2024" / "05", wav.parent, root / ".unfinished"):
        assert mode(folder) == 0o700, folder
    for file in (wav, wav.with_suffix(".json"), wav.parent / CHAIN_FILE):
        assert mode(file) == 0o600, file


def test_torn_last_line_is_cut_before_the_next_append(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    record(tmp_path / "r", "a", key_file)
    chain_file = next((tmp_path / "r").rglob(CHAIN_FILE))
    with open(chain_file, "ab") as handle:
        handle.write(b'{"call_id":"half-writ')  # the process died mid-append
    assert read_chain(chain_file.parent).torn_tail
    record(tmp_path / "r", "b", key_file, minutes=1)
    stored = read_chain(chain_file.parent)
    assert not stored.torn_tail and len(stored.lines) == 2
    assert check_chain(stored.lines, "2024/05/01", keys(key_file)).problems == ()


def test_append_unless_present_skips_a_call_already_chained(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    wav = record(tmp_path, "a", key_file)
    files = SealedFiles("a", "complete", wav, file_sha256(wav), wav.with_suffix(".json"),
                        file_sha256(wav.with_suffix(".json")))
    signer: Signer = load_signer(key_file)
    assert append_manifest(tmp_path, files, signer, unless_present=True) is None
    again = append_manifest(tmp_path, files, signer)
    assert again is not None and again.seq == 2 and again.prev_call_id == "a"
    assert chain_name(tmp_path, wav.parent) == "2024/05/01" and chain_name(tmp_path, tmp_path) == "."


def test_recovery_chains_an_interrupted_recording_once(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "k.pem"
    root = tmp_path / "recordings"
    folder = root / "2024" / "05" / "01"
    folder.mkdir(parents=True)
    (folder / "dead.wav").write_bytes(wav_header(0, 2, 8000) + b"\x01\x00\x02\x00" * 800)
    write_sidecar(folder / "dead.json", Sidecar("dead", "inbound", "***78", "***", T0, "dead.wav"))
    mark_unfinished(root, "dead", folder / "dead.json")
    report = recover_unfinished(root, signing_key_file=key_file)
    assert report.recovered == (folder / "dead.json",) and report.problems == ()
    stored = read_chain(folder)
    assert [json.loads(line)["status"] for line in stored.lines] == ["interrupted"]
    assert audit_archive(root, keys(key_file)).failures == 0
    assert recover_unfinished(root, signing_key_file=key_file).recovered == ()
    assert len(read_chain(folder).lines) == 1


def test_recovery_chains_a_call_sealed_by_a_process_that_died_before_chaining(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "k.pem"
    root = tmp_path / "recordings"
    folder = root / "2024" / "05" / "01"
    folder.mkdir(parents=True)
    wav = folder / "late.wav"
    wav.write_bytes(wav_header(4, 2, 8000) + b"\x00\x00\x00\x00")
    sealed = Sidecar("late", "inbound", "***", "***", T0, wav.name, status="complete",
                     sha256=file_sha256(wav))
    write_sidecar(folder / "late.json", sealed)
    mark_unfinished(root, "late", folder / "late.json")  # still registered: chaining never happened
    before = audit_archive(root, {})
    assert any("not in the manifest chain" in p and "still registered in .unfinished" in p
               for p in before.calls[0].problems)
    report = recover_unfinished(root, signing_key_file=key_file)
    assert report.chained == (folder / "late.json",) and report.recovered == ()
    assert audit_archive(root, keys(key_file)).failures == 0
    assert not (root / ".unfinished" / "late").exists()


def test_recovery_reports_a_broken_key_and_keeps_the_call_registered(tmp_path: Path) -> None:
    key_file = tmp_path / "k.pem"
    load_signer(key_file)
    key_file.chmod(0o644)
    root = tmp_path / "recordings"
    root.mkdir()
    (root / "x.wav").write_bytes(wav_header(0, 2, 8000))
    write_sidecar(root / "x.json", Sidecar("x", "inbound", "***", "***", T0, "x.wav"))
    mark_unfinished(root, "x", root / "x.json")
    report = recover_unfinished(root, signing_key_file=key_file)
    assert len(report.problems) == 1 and "readable by group or others" in report.problems[0]
    assert (root / ".unfinished" / "x").exists()


def test_threads_of_one_process_appending_at_once_keep_one_chain(tmp_path: Path) -> None:
    """``serve`` closes recordings in an executor: each append has its own lock on the file."""
    key_file = tmp_path / "k.pem"
    wav = record(tmp_path, "base", key_file)
    files = SealedFiles("base", "complete", wav, file_sha256(wav), wav.with_suffix(".json"),
                        file_sha256(wav.with_suffix(".json")))
    signer = load_signer(key_file)
    start = threading.Barrier(4)

    def seal_many(name: str) -> None:
        start.wait()
        for i in range(15):
            append_manifest(tmp_path, dataclasses.replace(files, call_id=f"{name}-{i}"), signer)

    threads = [threading.Thread(target=seal_many, args=(f"t{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = read_chain(wav.parent)
    assert len(stored.lines) == 61
    assert check_chain(stored.lines, "2024/05/01", keys(key_file)).problems == ()
