"""``recordings qa`` over a real archive: sealed recordings judged, QA files beside, CSV export.

Recordings are made with the real :class:`DualTrackRecorder` (WAV, sidecar, signed manifest),
then judged by the rules shipped in ``flows/library/qa``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import os
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder, RecordingError
from recordings.audit import audit_archive
from recordings.qa_batch import DEFAULT_RULES_DIR, check_recording, run_batch
from recordings.qa_cli import add_qa_commands
from recordings.qa_csv import CSV_HEADER, csv_cell, write_csv_file
from recordings.qa_file import qa_path_for, read_qa_file
from recordings.qa_rules_loader import load_catalog, parse_rules
from recordings.recovery import sidecar_files
from recordings.signing import load_trusted_key, public_key_path

pytestmark = pytest.mark.component

T0 = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
DISCLOSURE = (
    "Before your purchase can take effect, I must read you the risk disclosure for Acme Fund III. "
    "Please listen carefully.",
    "Private funds carry a high level of risk. The value of your investment can go down as well as up, "
    "and you may lose some or all of the money you invest.",
    "Private funds are not easy to sell. You may not be able to withdraw your money for several years, "
    "and there may be fees if you do.",
    "Past performance is not a guide to future returns, and this investment is not covered by a deposit "
    "guarantee scheme.",
)
ACK = (
    "Do you confirm that you have heard and understood this risk disclosure, and that you want your "
    "purchase to go ahead?"
)
Turns = list[tuple[str, str, float, float]]


def compliance_turns(*, barged: bool = False) -> Turns:
    """A confirmed compliance callback; ``barged``: the caller talks over the second segment."""
    turns: Turns = []
    now = 0.0

    def bot(text: str, seconds: float | None = None) -> tuple[float, float]:
        nonlocal now
        length = len(text.split()) * 0.39 if seconds is None else seconds
        turns.append(("bot", text, now, now + length))
        start, now = now, now + length + 0.3
        return start, start + length

    def caller(text: str) -> None:
        nonlocal now
        turns.append(("caller", text, now, now + 1.0))
        now += 1.5

    bot("Hello, this is an automated call from Acme Wealth. This call is recorded.")
    bot("Am I speaking with Jane Doe?")
    caller("yes")
    bot(DISCLOSURE[0])
    start, _ = bot(DISCLOSURE[1], seconds=3.0 if barged else None)
    if barged:
        turns.append(("caller", "yes yes go on", start + 2.6, start + 3.8))
        now = start + 4.3
    bot(DISCLOSURE[2])
    bot(DISCLOSURE[3])
    bot(ACK)
    caller("yes")
    bot("Thank you, Jane. Your purchase is confirmed and will now take effect. Goodbye.")
    return sorted(turns, key=lambda t: t[2])


def record(
    root: Path,
    call_id: str,
    start: datetime,
    turns: Turns,
    *,
    flow: str = "compliance_callback",
    version: str = "1.0",
    outcome: str = "confirmed",
) -> Path:
    """A sealed recording (2 s of audio, the transcript given); returns its sidecar path."""
    rec = DualTrackRecorder(
        root, call_id, CallMetadata("outbound", "+4930123456", "+4915112345678", start, flow, version)
    )
    for _ in range(100):
        rec.push_caller(np.full(FRAME_SAMPLES, 300, dtype=np.int16))
        rec.push_bot(np.full(FRAME_SAMPLES, -300, dtype=np.int16))
    for speaker, text, begin, end in turns:
        rec.add_turn(speaker, text, begin, end, 0.9 if speaker == "caller" else None)
    return rec.close(start + timedelta(seconds=2), outcome).sidecar_path


def manifest_of(sidecar: Path) -> dict[str, object]:
    lines = (sidecar.parent / "manifests.jsonl").read_text().splitlines()
    return next(json.loads(line) for line in lines if json.loads(line)["sidecar"] == sidecar.name)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    root = tmp_path / "data" / "recordings"
    record(root, "c-ok", T0, compliance_turns())
    record(root, "c-barged", T0 + timedelta(hours=1), compliance_turns(barged=True))
    record(root, "c-survey", T0 + timedelta(hours=2), [("bot", "Hello.", 0.0, 0.5)], flow="survey")
    record(root, "c-old", T0 - timedelta(days=2), compliance_turns())
    return root


def test_batch_judges_each_sealed_call_and_writes_its_qa_file_beside_it(archive: Path) -> None:
    sidecars = {p.stem: p for p in sidecar_files(archive)}
    before = {name: sha256(path) for name, path in sidecars.items()}
    checked_at = T0 + timedelta(days=1)
    report = run_batch(
        archive,
        load_catalog([DEFAULT_RULES_DIR]),
        since=T0 - timedelta(hours=1),
        show_progress=False,
        now=checked_at,
    )
    assert report.errors == ()
    assert [(c.sidecar.call_id, c.result.status) for c in report.calls if c.result] == [
        ("c-ok", "pass"),
        ("c-barged", "fail"),
    ]
    assert [(c.sidecar.call_id, c.skipped) for c in report.skipped] == [
        ("c-survey", "no QA rules for flow 'survey'")
    ]
    assert not qa_path_for(sidecars["c-old"]).exists()  # before --since: not even read

    barged = read_qa_file(qa_path_for(sidecars["c-barged"]))
    assert stat.S_IMODE(os.stat(qa_path_for(sidecars["c-barged"])).st_mode) == 0o600
    assert barged["status"] == "fail" and barged["checked_at"] == "2024-05-02T09:30:00.000Z"
    failed = {r["rule"]: r for r in barged["results"] if r["status"] == "fail"}
    assert set(failed) == {"disclosure_in_full", "confirmed_needs_yes_after_disclosure"}
    assert "the caller spoke over segment 2 at" in failed["disclosure_in_full"]["detail"]
    assert (
        failed["disclosure_in_full"]["at"][0]["end_s"] - failed["disclosure_in_full"]["at"][0]["start_s"]
        == 3.0
    )
    assert barged["rules"]["file"].endswith("flows/library/qa/compliance_callback.yaml")
    assert len(barged["rules"]["sha256"]) == 64

    # The sealed files are untouched and the QA file names the exact sidecar bytes it judged.
    assert {name: sha256(path) for name, path in sidecars.items()} == before
    for name in ("c-ok", "c-barged"):
        qa = read_qa_file(qa_path_for(sidecars[name]))
        assert qa["sidecar"] == f"{name}.json"
        assert qa["sidecar_sha256"] == manifest_of(sidecars[name])["sidecar_sha256"] == before[name]
    assert sorted(p.stem for p in sidecar_files(archive)) == sorted(sidecars)  # QA files are not sidecars


def test_a_rerun_replaces_the_qa_file_privately_and_no_write_leaves_none(archive: Path) -> None:
    catalog = load_catalog([DEFAULT_RULES_DIR])
    sidecar = next(p for p in sidecar_files(archive) if p.stem == "c-ok")
    first = check_recording(sidecar, catalog, now=T0)
    assert first.qa_path is not None
    os.chmod(first.qa_path, 0o644)
    again = check_recording(sidecar, catalog, now=T0 + timedelta(hours=5))
    assert again.qa_path == first.qa_path
    assert stat.S_IMODE(os.stat(first.qa_path).st_mode) == 0o600
    assert read_qa_file(first.qa_path)["checked_at"] == "2024-05-01T14:30:00.000Z"
    other = next(p for p in sidecar_files(archive) if p.stem == "c-barged")
    dry = check_recording(other, catalog, write=False)
    assert dry.result is not None and dry.result.status == "fail" and dry.qa_path is None
    assert not qa_path_for(other).exists()
    assert [p.name for p in other.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_a_qa_file_never_replaces_the_sidecar_of_a_call_named_like_one(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    record(root, "x", T0, compliance_turns())
    squatter = record(root, "x.qa", T0, compliance_turns())  # a legal call id: its sidecar is x.qa.json
    assert sorted(p.name for p in sidecar_files(root)) == ["x.json", "x.qa.json"]
    before = sha256(squatter)
    with pytest.raises(RecordingError, match=r"x\.qa\.json: is a recording's sidecar, not a QA result"):
        check_recording(root / "2024" / "05" / "01" / "x.json", load_catalog([DEFAULT_RULES_DIR]))
    assert sha256(squatter) == before


def test_an_explicit_rules_file_judges_only_the_flows_it_names(archive: Path, tmp_path: Path) -> None:
    rules_file = tmp_path / "survey.yaml"
    rules_file.write_text(
        "qa:\n  name: survey\n  applies_to: {flows: [survey]}\nrules:\n"
        "  - {id: greets, kind: required_prompt, text: Hello}\n"
    )
    report = run_batch(archive, load_catalog([rules_file]), show_progress=False, write=False)
    assert [c.sidecar.call_id for c in report.calls] == ["c-survey"]
    assert {c.skipped for c in report.skipped} == {"no QA rules for flow 'compliance_callback'"}


def test_the_progress_bar_runs_on_the_console(archive: Path) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    run_batch(archive, load_catalog([DEFAULT_RULES_DIR]), console=console, write=False)
    assert "QA" in out.getvalue() and "4/4" in out.getvalue()


# -- CSV --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+1", "'=1+1"),
        ("+49 30 1234", "'+49 30 1234"),
        ("-5", "'-5"),
        ("@SUM(A1:A9)", "'@SUM(A1:A9)"),
        ("\t=cmd", "'\t=cmd"),
        ("\r=cmd", "'\r=cmd"),
        ("  =cmd", "'  =cmd"),
        ("confirmed", "confirmed"),
        ("a=b", "a=b"),
        (87.5, "87.5"),
        (None, ""),
    ],
)
def test_csv_cells_cannot_become_formulas(value: object, cell: str) -> None:
    assert csv_cell(value) == cell


def test_csv_export_escapes_what_came_from_the_call(tmp_path: Path) -> None:
    root = tmp_path / "recordings"
    record(
        root,
        "evil",
        T0,
        [("bot", "Hello.", 0.0, 0.5), ("caller", '=HYPERLINK("http://x") guaranteed', 1.0, 2.0)],
        flow='=HYPERLINK("http://evil","click")',
        version="-1+2",
        outcome="@SUM(A1)",
    )
    rules = parse_rules(
        "qa: {name: '+everyone', version: '=2'}\nrules:\n"
        "  - {id: words, kind: forbidden_phrases, phrases: [guaranteed]}\n",
        "any.yaml",
    )
    report = run_batch(root, rules, show_progress=False)
    out = tmp_path / "qa.csv"
    assert write_csv_file(report.calls, out) == 1
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    with out.open(newline="") as handle:
        header, row = list(csv.reader(handle))
    assert tuple(header) == CSV_HEADER
    cells = dict(zip(header, row, strict=True))
    assert cells["flow"] == '\'=HYPERLINK("http://evil","click")'
    assert cells["flow_version"] == "'-1+2"
    assert cells["outcome"] == "'@SUM(A1)"
    assert cells["rules"] == "'+everyone" and cells["rules_version"] == "'=2"
    assert cells["status"] == "fail" and cells["failed_rules"] == "words" and cells["score"] == "0"
    assert cells["failures"].startswith("words @ 1.00-2.00s: caller said 'guaranteed' at 1.00-2.00s")
    assert all(not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")) for cell in row)


# -- the command ------------------------------------------------------------------------------


def run_qa(monkeypatch: pytest.MonkeyPatch, *argv: str) -> int:
    for name in list(os.environ):
        if name.startswith("IVR_"):
            monkeypatch.delenv(name)
    parser = argparse.ArgumentParser(prog="run_ivr.py recordings")
    add_qa_commands(parser.add_subparsers(dest="recordings_command", required=True))
    args = parser.parse_args(["qa", *argv])
    return int(args.func(args))


def test_the_command_prints_each_call_exports_csv_and_fails_on_a_failed_call(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data_dir = str(archive.parent)
    out = tmp_path / "out.csv"
    code = run_qa(monkeypatch, "--data-dir", data_dir, "--since", "2024-05-01", "--csv", str(out))
    printed = capsys.readouterr()
    assert code == 1, printed
    lines = printed.out.splitlines()
    assert lines[0] == "PASS c-ok score 100 (compliance_callback, outcome confirmed)"
    assert lines[1].startswith("FAIL c-barged score ")
    assert lines[2].startswith("  FAILED disclosure_in_full [critical] @ ")
    assert "the caller spoke over segment 2" in lines[2]
    assert lines[-1] == (
        "2 calls judged: 1 passed, 1 failed, 0 incomplete; skipped: 1 no QA rules for flow 'survey'"
    )
    assert [line for line in printed.err.splitlines() if not line.startswith("ts=")] == [
        f"CSV {out}: 2 calls"
    ]
    assert [row[0] for row in csv.reader(out.open())] == ["call_id", "c-ok", "c-barged"]

    assert run_qa(monkeypatch, "--data-dir", data_dir, "c-ok", "--json", "--no-write") == 0
    [only] = json.loads(capsys.readouterr().out)
    assert only["call_id"] == "c-ok" and only["status"] == "pass" and only["qa_file"] is None

    assert run_qa(monkeypatch, "--data-dir", data_dir, "--since", "2025-01-01") == 0
    assert capsys.readouterr().out == "0 calls judged: 0 passed, 0 failed, 0 incomplete\n"


def test_the_command_reports_invalid_rules_and_options(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("qa: {name: bad}\nrules:\n  - id: a\n    kind: max_silence\n    max_gap: later\n")
    assert run_qa(monkeypatch, "--data-dir", str(archive.parent), "--rules", str(bad)) == 2
    assert capsys.readouterr().err == (
        f"{bad}:5:14: rule 'a'.max_gap: invalid duration 'later' (use e.g. 5s, 500ms, 1m30s)\n"
    )
    assert run_qa(monkeypatch, "--check-rules", "--rules", str(bad)) == 1
    assert capsys.readouterr().out.startswith(f"{bad}:5:14: ")
    assert run_qa(monkeypatch, "--check-rules") == 0  # the shipped rules
    assert run_qa(monkeypatch, "--data-dir", str(archive.parent), "--since", "last tuesday") == 2
    assert "--since 'last tuesday': not a date or time" in capsys.readouterr().err
    assert run_qa(monkeypatch, "--data-dir", str(archive.parent), "nobody") == 1
    assert "no recording of call 'nobody'" in capsys.readouterr().err


def test_recordings_verify_and_list_still_pass_next_to_qa_files(archive: Path) -> None:
    """QA files are derived data beside the sealed ones: the archive still verifies, call by call."""
    run_batch(archive, load_catalog([DEFAULT_RULES_DIR]), show_progress=False)
    key_file = archive.parent / "keys" / "recordings-ed25519.pem"
    key = load_trusted_key(public_key_path(key_file))
    report = audit_archive(archive, {key.key_id: key})
    assert report.failures == 0, [c.problems for c in report.calls] + list(report.other)
    assert sorted(c.call_id for c in report.calls) == ["c-barged", "c-ok", "c-old", "c-survey"]
    assert len(list(archive.rglob("*.qa.json"))) == 3
