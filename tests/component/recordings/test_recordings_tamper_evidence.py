"""``recordings verify`` against a tampered archive: every change to a sealed call fails, by name.

Calls are recorded through :class:`DualTrackRecorder` (no SIP) into ``DATA/recordings`` with the
default key in ``DATA/keys``, then changed the way an insider would, then checked in a subprocess
exactly as an auditor runs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder, audit_archive
from recordings.chain_store import CHAIN_FILE
from recordings.signing import load_trusted_key

ROOT = Path(__file__).resolve().parents[3]
T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)
DAY = Path("recordings/2024/05/01")


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


def verify(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = run_ivr("recordings", "verify", "--data-dir", str(data), *args)
    if "ModuleNotFoundError" in result.stderr and os.environ.get("CI") != "true":
        pytest.skip(f"run_ivr.py cannot start yet: {result.stderr.strip().splitlines()[-1]}")
    return result


def record(data: Path, call_id: str, minutes: int, said: str = "my balance please") -> Path:
    start = T0 + timedelta(minutes=minutes)
    rec = DualTrackRecorder(
        data / "recordings",
        call_id,
        CallMetadata("inbound", "+4915112345678", "sip:100@pbx", start, "hotline", "3"),
    )
    for i in range(60):
        rec.push_caller(np.full(FRAME_SAMPLES, 300 + i, dtype=np.int16))
        rec.push_bot(np.full(FRAME_SAMPLES, -300, dtype=np.int16))
    rec.add_turn("bot", "Welcome, how can I help?", 0.0, 0.5)
    rec.add_turn("caller", said, 0.6, 1.1, 0.88)
    return rec.close(start + timedelta(seconds=1.2), outcome="balance_told").wav_path


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """Four sealed calls in one day; the untouched set verifies (in-process here, to save time)."""
    for i, call in enumerate(("c1", "c2", "c3", "c4")):
        record(tmp_path, call, i)
    trusted = load_trusted_key(tmp_path / "keys" / "recordings-ed25519.pub.pem")
    report = audit_archive(tmp_path / "recordings", {trusted.key_id: trusted})
    assert report.failures == 0 and len(report.calls) == 4, report
    return tmp_path


@pytest.mark.component
def test_untouched_archive_verifies(archive: Path) -> None:
    result = verify(archive, "--all")
    assert result.returncode == 0, result.stdout + result.stderr
    firsts = [line.split()[0] for line in result.stdout.splitlines()]
    assert firsts == ["KEY", "OK", "OK", "OK", "OK", "CHAIN", "4"]
    assert "4 of 4 recordings verified" in result.stdout
    assert re.search(
        rf"CHAIN {re.escape(str(archive / DAY / CHAIN_FILE))}: 4 manifests, head [0-9a-f]{{64}}",
        result.stdout,
    )


def failed_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 1, result.stdout + result.stderr
    return [line for line in result.stdout.splitlines() if line.startswith("FAILED")]


@pytest.mark.component
def test_one_flipped_wav_byte_fails_naming_the_call(archive: Path) -> None:
    wav = archive / DAY / "c2.wav"
    data = bytearray(wav.read_bytes())
    data[2000] ^= 0x01
    wav.write_bytes(bytes(data))
    sealed = json.loads(wav.with_suffix(".json").read_text())["sha256"]
    result = verify(archive)
    assert failed_lines(result) == [
        f"FAILED {wav}: SHA-256 mismatch: sidecar {sealed}, file {hashlib.sha256(data).hexdigest()}"
    ]
    assert f"OK {archive / DAY / 'c1.wav'}" in result.stdout


@pytest.mark.component
def test_wav_replaced_with_a_matching_sidecar_hash_still_fails(archive: Path) -> None:
    """The insider of issue 12: changes the audio and rewrites the hash next to it."""
    wav, sidecar = archive / DAY / "c3.wav", archive / DAY / "c3.json"
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0x7F
    wav.write_bytes(bytes(data))
    raw = json.loads(sidecar.read_text())
    raw["sha256"] = hashlib.sha256(data).hexdigest()
    sidecar.write_text(json.dumps(raw, ensure_ascii=False, indent=2) + "\n")
    (line,) = failed_lines(verify(archive))
    assert line.startswith(f"FAILED {wav}: WAV changed since it was sealed")
    assert "sidecar c3.json changed since it was sealed" in line


@pytest.mark.component
def test_edited_transcript_in_a_sidecar_fails_naming_the_call(archive: Path) -> None:
    sidecar = archive / DAY / "c1.json"
    sidecar.write_text(sidecar.read_text().replace("my balance please", "cancel my account"))
    (line,) = failed_lines(verify(archive))
    assert line.startswith(f"FAILED {archive / DAY / 'c1.wav'}: sidecar c1.json changed since it was sealed")
    assert f"manifest at {archive / DAY / CHAIN_FILE}:1" in line
    one = verify(archive, "c1")
    assert one.returncode == 1 and "0 of 1 recordings verified, 1 failed" in one.stdout
    assert verify(archive, "c2").returncode == 0


@pytest.mark.component
def test_edited_manifest_fails_its_signature(archive: Path) -> None:
    chain = archive / DAY / CHAIN_FILE
    lines = chain.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b'"status":"complete"', b'"status":"interrupted"')
    chain.write_bytes(b"".join(lines))
    failed = failed_lines(verify(archive))
    assert len(failed) == 1 and failed[0].startswith(f"FAILED {archive / DAY / 'c3.wav'}: ")
    assert f"{chain}:3: signature does not verify: the manifest was changed after signing" in failed[0]
    assert f"{chain}:3: manifest changed after it was chained: line 4 (call c4)" in failed[0]


@pytest.mark.component
def test_deleted_call_files_fail_naming_the_call(archive: Path) -> None:
    for path in (archive / DAY).glob("c2.*"):
        path.unlink()
    (line,) = failed_lines(verify(archive))
    assert line == (
        f"FAILED {archive / DAY / 'c2.wav'}: deleted: sealed at {archive / DAY / CHAIN_FILE}:2,"
        " but its WAV and sidecar are gone"
    )
    assert verify(archive, "c2").returncode == 1


@pytest.mark.component
def test_call_deleted_with_its_manifest_leaves_a_hole_naming_it(archive: Path) -> None:
    for path in (archive / DAY).glob("c3.*"):
        path.unlink()
    chain = archive / DAY / CHAIN_FILE
    chain.write_bytes(
        b"".join(
            line for line in chain.read_bytes().splitlines(keepends=True) if b'"call_id":"c3"' not in line
        )
    )
    result = verify(archive)
    (line,) = failed_lines(result)
    assert line == (
        f"FAILED {archive / DAY / 'c3.wav'}: {chain}:3: removed from the chain:"
        " seq 3 missing before line 3 (call c4),"
        " whose manifest names call 'c3' as the one before"
    )
    assert "3 of 4 recordings verified, 1 failed" in result.stdout
    one = verify(archive, "c3")
    assert one.returncode == 1 and "removed from the chain" in one.stdout


@pytest.mark.component
def test_sealed_call_missing_from_its_chain_fails(archive: Path) -> None:
    chain = archive / DAY / CHAIN_FILE
    chain.rename(chain.with_name("elsewhere.jsonl"))
    failed = failed_lines(verify(archive))
    assert len(failed) == 4 and all(f"not in the manifest chain {chain}" in line for line in failed)


@pytest.mark.component
def test_archive_re_signed_with_another_key_fails_against_the_auditors_copy(archive: Path) -> None:
    """Whoever can rewrite the archive and the exported key is caught by a pinned public key."""
    keys = archive / "keys"
    pinned = archive / "auditor.pub.pem"
    shutil.copy(keys / "recordings-ed25519.pub.pem", pinned)
    sidecar = archive / DAY / "c4.json"
    sidecar.write_text(sidecar.read_text().replace("balance_told", "callback_agreed"))
    # the attacker replaces the key and re-seals the whole day with it
    shutil.rmtree(keys)
    chain = archive / DAY / CHAIN_FILE
    chain.unlink()
    forger = Ed25519PrivateKey.generate()
    keys.mkdir(mode=0o700)
    (keys / "recordings-ed25519.pem").write_bytes(
        forger.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    (keys / "recordings-ed25519.pem").chmod(0o600)
    forge = textwrap.dedent(
        f"""
        from pathlib import Path
        from recordings.chain_store import SealedFiles, append_manifest
        from recordings.signing import load_signer
        from recordings.wav_writer import file_sha256
        day, root = Path({str(archive / DAY)!r}), Path({str(archive / "recordings")!r})
        signer = load_signer(Path({str(keys / "recordings-ed25519.pem")!r}))
        for call in ("c1", "c2", "c3", "c4"):
            wav, side = day / f"{{call}}.wav", day / f"{{call}}.json"
            files = SealedFiles(call, "complete", wav, file_sha256(wav), side, file_sha256(side))
            append_manifest(root, files, signer)
        """
    )
    subprocess.run(
        [sys.executable, "-c", forge], check=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}
    )
    assert verify(archive).returncode == 0  # the forged key verifies its own forgery...
    result = verify(archive, "--public-key", str(pinned))
    failed = failed_lines(result)  # ...but not against the key the auditor kept
    assert len(failed) == 4 and all("which is not a trusted public key" in line for line in failed)


@pytest.mark.component
def test_signature_and_link_check_with_openssl_as_docs_auditing_says(archive: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    script = textwrap.dedent(
        """
        set -eu
        cd "$1"
        line=$(grep '"call_id":"c2"' manifests.jsonl)
        printf '%s' "$line" | sed -E 's/,"sig":"[^"]*"\\}$/}/' > /tmp/$$.msg
        printf '%s' "$line" | sed -E 's/.*,"sig":"([^"]*)"\\}$/\\1/' | base64 -d > /tmp/$$.sig
        openssl pkeyutl -verify -pubin -inkey "$2" -rawin -in /tmp/$$.msg -sigfile /tmp/$$.sig
        rm -f /tmp/$$.msg /tmp/$$.sig
        sed -n 1p manifests.jsonl | tr -d '\\n' | sha256sum
        sed -n 2p manifests.jsonl | grep -o '"prev":"[0-9a-f]*"'
        sha256sum c2.wav c2.json
        """
    )
    pub = archive / "keys" / "recordings-ed25519.pub.pem"
    result = subprocess.run(
        ["bash", "-c", script, "audit", str(archive / DAY), str(pub)],
        capture_output=True,
        text=True,
        check=False,
    )
    if "pkeyutl: Unknown option" in result.stderr or "-rawin" in result.stderr:
        pytest.skip("this openssl cannot verify Ed25519 raw input (needs OpenSSL 3)")
    assert result.returncode == 0, result.stderr
    out = result.stdout.splitlines()
    assert out[0] == "Signature Verified Successfully"
    assert out[2] == f'"prev":"{out[1].split()[0]}"'
    manifest = json.loads((archive / DAY / CHAIN_FILE).read_bytes().splitlines()[1])
    assert out[3].split()[0] == manifest["wav_sha256"] and out[4].split()[0] == manifest["sidecar_sha256"]


@pytest.mark.component
def test_python_snippet_in_docs_auditing_verifies_a_chain(archive: Path) -> None:
    doc = (ROOT / "docs" / "auditing.md").read_text(encoding="utf-8")
    snippet = re.search(r"```python\n(.*?)```", doc, re.DOTALL)
    assert snippet is not None, "docs/auditing.md has no python snippet"
    pub, chain = archive / "keys" / "recordings-ed25519.pub.pem", archive / DAY / CHAIN_FILE
    ok = subprocess.run(
        [sys.executable, "-c", snippet.group(1), str(pub), str(chain)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0 and "4 manifests: signatures and links verify" in ok.stdout, ok.stderr
    chain.write_bytes(chain.read_bytes().replace(b'"seq":2,', b'"seq":2 ,'))
    bad = subprocess.run(
        [sys.executable, "-c", snippet.group(1), str(pub), str(chain)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0


SEALER = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime, timedelta
    from pathlib import Path
    import numpy as np
    from recordings import CallMetadata, DualTrackRecorder

    data, name, calls = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    print("ready", flush=True)
    while not (data / "go").exists():
        time.sleep(0.001)
    start = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    for i in range(calls):
        rec = DualTrackRecorder(data / "recordings", f"{name}-{i}", CallMetadata("outbound", "1", "2", start))
        for _ in range(5):
            rec.push_caller(np.full(160, i, dtype=np.int16))
        rec.add_turn("bot", f"call {i} of {name}", 0.0, 0.1)
        rec.close(start + timedelta(seconds=0.1))
    """
)


@pytest.mark.component
def test_two_processes_sealing_into_one_day_keep_one_valid_chain(tmp_path: Path) -> None:
    calls = 25
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    children = [
        subprocess.Popen(
            [sys.executable, "-c", SEALER, str(tmp_path), name, str(calls)],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for name in ("w1", "w2")
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        (tmp_path / "go").touch()  # both race for the first key and the first manifest
        deadline = time.monotonic() + 60
        for child in children:
            assert child.wait(timeout=max(1.0, deadline - time.monotonic())) == 0
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
            if child.stdout is not None:
                child.stdout.close()
    lines = (tmp_path / DAY / CHAIN_FILE).read_bytes().splitlines()
    manifests = [json.loads(line) for line in lines]
    assert [m["seq"] for m in manifests] == list(range(1, 2 * calls + 1))
    assert len({m["sealer"] for m in manifests}) == 2
    assert len({m["key_id"] for m in manifests}) == 1
    result = verify(tmp_path)
    assert result.returncode == 0, result.stdout
    assert f"{2 * calls} of {2 * calls} recordings verified" in result.stdout
