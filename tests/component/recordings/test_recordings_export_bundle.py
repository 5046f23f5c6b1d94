"""The regulator bundle: ``recordings export`` writes a zip that checks with sha256sum and openssl
only (its verify.sh, and the by-hand steps of its VERIFY.txt run literally), fails by name when a
byte changes, and is refused for a call that no longer matches its seal."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest

from recordings.signing import default_key_file, load_signer
from tests.component.recordings.conftest import T0, config_file, record, recordings

pytestmark = [pytest.mark.component, pytest.mark.usefixtures("cli_environment")]


@pytest.fixture(autouse=True)
def _tools() -> None:
    for tool in ("openssl", "sha256sum", "base64", "sed", "bash", "sh"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed")
    probe = subprocess.run(["openssl", "pkeyutl", "-help"], capture_output=True, text=True, check=False)
    if "-rawin" not in probe.stdout + probe.stderr:
        pytest.skip("this openssl cannot verify Ed25519 raw input (needs OpenSSL 3)")


def unpack(bundle: Path, into: Path) -> Path:
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(into)
        modes = {info.filename: info.external_attr >> 16 for info in archive.infolist()}
    assert modes["verify.sh"] == 0o755 and modes["calls.json"] == 0o644
    return into


def test_exported_calls_verify_with_standard_tools(tmp_path: Path) -> None:
    data = tmp_path / "data"
    record(data, "c1", said="I want to cancel")
    record(data, "c2", start=T0 + timedelta(days=1), said="my balance please")
    out = tmp_path / "bundle.zip"
    result = recordings(
        data, None, "export", "--call", "c1", "--call", "c2", "--out", str(out), "--as", "Ann"
    )
    assert result.returncode == 0, result.stderr
    key_id = load_signer(default_key_file(data / "recordings")).key_id
    assert f"EXPORTED 2 call(s) to {out}" in result.stdout and key_id in result.stdout
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    root = unpack(out, tmp_path / "regulator")
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()) == [
        "SHA256SUMS",
        "VERIFY.txt",
        "calls.json",
        "calls/c1/c1.json",
        "calls/c1/c1.transcript.txt",
        "calls/c1/c1.wav",
        "calls/c1/manifest.jsonl",
        "calls/c2/c2.json",
        "calls/c2/c2.transcript.txt",
        "calls/c2/c2.wav",
        "calls/c2/manifest.jsonl",
        "public-key.pem",
        "verify.sh",
    ]
    assert (root / "calls/c1/c1.wav").read_bytes() == (data / "recordings/2024/05/01/c1.wav").read_bytes()
    assert "caller: I want to cancel" in (root / "calls/c1/c1.transcript.txt").read_text()
    summary = json.loads((root / "calls.json").read_text())
    assert [c["call_id"] for c in summary] == ["c1", "c2"] and "5550100123" not in json.dumps(summary)
    verify_txt = (root / "VERIFY.txt").read_text()
    assert f"KEY_ID {key_id}" in verify_txt and "Exported by Ann." in verify_txt

    for shell in ("sh", "bash"):
        run = subprocess.run([shell, "verify.sh"], cwd=root, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.splitlines() == [
            f"KEY {key_id} public-key.pem",
            "OK c1",
            "OK c2",
            "2 of 2 calls verified",
        ]
    sums = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=root, capture_output=True, text=True, check=False
    )
    assert sums.returncode == 0, sums.stdout

    # the by-hand steps of VERIFY.txt, run literally
    fingerprint = re.search(r"^    (openssl pkey -pubin .*)$", verify_txt, re.MULTILINE)
    assert fingerprint is not None
    printed = subprocess.run(
        ["bash", "-c", fingerprint.group(1)], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    assert printed.split()[0] == key_id
    block = verify_txt.split("Check one call by hand\n----------------------\n")[1].split("\n\n")[0]
    script = "set -eu\n" + "\n".join(line[4:] for line in block.splitlines()).replace("CALL", "c2")
    manual = subprocess.run(["bash", "-c", script], cwd=root, capture_output=True, text=True, check=False)
    assert manual.returncode == 0, manual.stderr
    lines = manual.stdout.splitlines()
    assert lines[0] == "Signature Verified Successfully"
    wav_sha = lines[1].split('"')[3]
    sidecar_sha = lines[2].split('"')[3]
    assert lines[3].split() == [wav_sha, "c2.wav"] and lines[4].split() == [sidecar_sha, "c2.json"]

    # one changed byte, a changed transcript, a forged manifest: each fails by name
    wav = root / "calls/c2/c2.wav"
    wav.write_bytes(wav.read_bytes()[:-1] + b"\x01")
    sidecar = root / "calls/c1/c1.json"
    sidecar.write_text(sidecar.read_text().replace("I want to cancel", "I do not want to cancel"))
    bad = subprocess.run(["sh", "verify.sh"], cwd=root, capture_output=True, text=True, check=False)
    assert bad.returncode == 1
    assert bad.stdout.splitlines()[1:] == [
        "FAILED c1: c1.json does not match its SHA-256 in the manifest",
        "FAILED c2: c2.wav does not match its SHA-256 in the manifest",
        "0 of 2 calls verified",
    ]
    manifest = root / "calls/c1/manifest.jsonl"
    manifest.write_text(manifest.read_text().replace('"status":"complete"', '"status":"interrupted"'))
    forged = subprocess.run(["bash", "verify.sh"], cwd=root, capture_output=True, text=True, check=False)
    assert "FAILED c1: signature does not verify" in forged.stdout


def test_export_by_search_and_refusals(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    config = config_file(data, db_url)
    record(data, "c1", said="I want to cancel", index_url=db_url)
    record(data, "c2", start=T0 + timedelta(hours=1), said="my balance please", index_url=db_url)
    record(data, "c3", start=T0 + timedelta(hours=2), said="cancel it now", index_url=db_url)
    out = tmp_path / "cancel.zip"
    result = recordings(
        data, config, "export", "--search", "--says", "cancel", "--speaker", "caller", "--out", str(out)
    )
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(out) as archive:
        assert sorted({name.split("/")[1] for name in archive.namelist() if name.startswith("calls/")}) == [
            "c1",
            "c3",
        ]

    refusals = {
        ("--call", "c1", "--out", str(out)): "already exists",
        ("--call", "c1", "--out", str(tmp_path / "x.tar")): "the bundle is a zip",
        ("--out", str(tmp_path / "y.zip")): "give --call CALL_ID (repeatable) or --search with filters",
        ("--search", "--out", str(tmp_path / "y.zip")): "give at least one filter",
        ("--call", "c1", "--says", "x", "--out", str(tmp_path / "y.zip")): "not both",
        ("--search", "--says", "xylophone", "--out", str(tmp_path / "y.zip")): "no call matches",
        (
            "--search",
            "--says",
            "cancel",
            "--limit",
            "1",
            "--out",
            str(tmp_path / "y.zip"),
        ): "more than 1 calls match",
        ("--call", "nope", "--out", str(tmp_path / "y.zip")): "no recording of call 'nope'",
    }
    for args, message in refusals.items():
        refused = recordings(data, config, "export", *args)
        assert refused.returncode == 2 and message in refused.stderr, (args, refused.stderr)
    assert not (tmp_path / "y.zip").exists()

    # a call that no longer matches its seal is not exported, and nothing is written
    wav = data / "recordings/2024/05/01/c2.wav"
    wav.write_bytes(wav.read_bytes()[:-2] + b"\x00\x01")
    tampered = recordings(
        data, config, "export", "--call", "c1", "--call", "c2", "--out", str(tmp_path / "z.zip")
    )
    assert tampered.returncode == 2
    assert "call c2: c2.wav changed since it was sealed" in tampered.stderr
    assert not (tmp_path / "z.zip").exists() and not list(tmp_path.glob(".z.zip*"))
    log = json.loads(recordings(data, config, "audit", "--json").stdout)
    assert [(row["action"], row["call_ids"]) for row in log if row["action"] == "export"] == [
        ("export", ["c1", "c3"])
    ]
