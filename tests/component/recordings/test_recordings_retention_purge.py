"""Legal hold and retention on SQLite and PostgreSQL: ``purge`` deletes what is due except held
calls, leaves a signed tombstone in the hash chain, and ``verify --all`` still passes and says
why each call is gone; a call deleted any other way still fails."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from recordings.chain_store import CHAIN_FILE, append_tombstone, call_manifests
from recordings.database import open_index_database
from recordings.retention import PurgeItem, PurgePlan, RetentionPolicy, execute_purge, plan_purge
from recordings.signing import default_key_file, load_signer
from tests.component.recordings.conftest import T0, config_file, record, recordings

pytestmark = [pytest.mark.component, pytest.mark.usefixtures("cli_environment")]
NOW = T0 + timedelta(days=100)


def archive(data: Path, db_url: str) -> None:
    """A hotline call per day (days 0..3) and a compliance callback call on day 1."""
    for day in range(4):
        record(data, f"h{day}", start=T0 + timedelta(days=day), index_url=db_url)
    record(
        data,
        "cb",
        start=T0 + timedelta(days=1, hours=2),
        direction="outbound",
        caller="sip:100@pbx",
        callee="+15550100123",
        flow="callback",
        tags={"campaign": "compliance_callback"},
        index_url=db_url,
    )


def verify_lines(data: Path, *args: str) -> tuple[int, list[str]]:
    result = recordings(data, None, "verify", *args)
    return result.returncode, result.stdout.splitlines()


def test_plan_follows_retention_and_holds(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    archive(data, db_url)
    engine = open_index_database(db_url)
    policy = RetentionPolicy({"default": 98, "compliance_callback": 2555})
    plan = plan_purge(engine, policy, NOW)
    assert [(i.call.call_id, i.rule, i.days) for i in plan.due] == [
        ("h0", "default", 98),
        ("h1", "default", 98),
    ]
    assert plan.held == ()
    assert plan_purge(engine, RetentionPolicy({}), NOW) == PurgePlan((), ())
    assert [i.call.call_id for i in plan_purge(engine, RetentionPolicy({"hotline": 97}), NOW).due] == [
        "h0",
        "h1",
        "h2",
    ]


def test_purge_tombstones_deletes_and_verify_explains_the_gap(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    archive(data, db_url)
    config = config_file(data, db_url, {"default": 90, "compliance_callback": 2555})
    held = recordings(data, config, "hold", "h1", "--reason", "complaint 17", "--as", "Legal Lee")
    assert held.returncode == 0 and "HELD h1 by Legal Lee: complaint 17" in held.stdout, held.stderr

    dry = recordings(data, config, "purge", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert [line.split()[:2] for line in dry.stdout.splitlines()] == [
        ["HELD", "h1"],
        ["DUE", "h0"],
        ["DUE", "h2"],
        ["DUE", "h3"],
        ["3", "call(s)"],
    ]
    assert (data / "recordings/2024/05/01/h0.wav").exists()

    purge = recordings(data, config, "purge", "--as", "Retention Robot")
    assert purge.returncode == 0, purge.stdout + purge.stderr
    assert "PURGED h0 started 2024-05-01 (retention 90 days (default), due 2024-07-30)" in purge.stdout
    assert "3 call(s) purged, 1 held" in purge.stdout
    for day, call in ((1, "h0"), (3, "h2"), (4, "h3")):
        folder = data / f"recordings/2024/05/0{day}"
        assert not (folder / f"{call}.wav").exists() and not (folder / f"{call}.json").exists()
    assert (data / "recordings/2024/05/02/h1.wav").exists() and (
        data / "recordings/2024/05/02/cb.wav"
    ).exists()

    # the tombstone: signed, after the seal, naming the deleted files, why and who
    chain = (data / "recordings/2024/05/01" / CHAIN_FILE).read_bytes().splitlines()
    stone = json.loads(chain[-1])
    sealed = json.loads(chain[0])
    assert (stone["event"], stone["call_id"], stone["actor"]) == ("purged", "h0", "Retention Robot")
    assert stone["reason"] == "retention 90 days (default)"
    assert (stone["wav_sha256"], stone["sidecar_sha256"]) == (sealed["wav_sha256"], sealed["sidecar_sha256"])

    code, lines = verify_lines(data, "--all")
    assert code == 0, lines
    assert [line.split()[0] for line in lines if not line.startswith(("KEY", "CHAIN"))] == [
        "OK",
        "OK",
        "PURGED",
        "PURGED",
        "PURGED",
        "2",
    ]
    purged = [line for line in lines if line.startswith("PURGED")]
    assert purged[0].startswith(f"PURGED {data / 'recordings/2024/05/01/h0.wav'}: purged ")
    assert "by Retention Robot (retention 90 days (default)), tombstone at" in purged[0]
    assert lines[-1] == "2 of 2 recordings verified, 3 purged (tombstoned)"
    assert verify_lines(data, "h0")[0] == 0

    # gone from the index; held call kept; the next purge has nothing to do
    found = recordings(data, config, "search", "--json")
    assert [c["call_id"] for c in json.loads(found.stdout)] == ["cb", "h1"]
    assert [c["held"] for c in json.loads(found.stdout)] == [False, True]
    again = recordings(data, config, "purge")
    assert again.returncode == 0 and "0 call(s) purged, 1 held" in again.stdout

    # released: purged at the next run
    assert recordings(data, config, "release", "h1", "--reason", "case closed").returncode == 0
    last = recordings(data, config, "purge")
    assert "PURGED h1" in last.stdout and "1 call(s) purged, 0 held" in last.stdout
    assert verify_lines(data, "--all")[1][-1] == "1 of 1 recordings verified, 4 purged (tombstoned)"


def test_a_call_deleted_outside_purge_still_fails_verify(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    archive(data, db_url)
    config = config_file(data, db_url, {"default": 90})
    folder = data / "recordings/2024/05/04"
    (folder / "h3.wav").unlink()
    (folder / "h3.json").unlink()
    code, lines = verify_lines(data, "--all")
    assert code == 1
    assert any(line.startswith(f"FAILED {folder / 'h3.wav'}: deleted: sealed at") for line in lines), lines
    # and purge does not paper over it: the call is refused, not tombstoned
    purge = recordings(data, config, "purge")
    assert purge.returncode == 1
    assert "FAILED h3: h3.wav is missing: not purged (run recordings verify h3)" in purge.stdout
    assert all(not m.purged for _, m in call_manifests(folder, "h3"))
    assert verify_lines(data, "h3")[0] == 1


def test_a_tampered_call_is_not_purged(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    archive(data, db_url)
    config = config_file(data, db_url, {"default": 90})
    wav = data / "recordings/2024/05/01/h0.wav"
    raw = bytearray(wav.read_bytes())
    raw[500] ^= 1
    wav.write_bytes(bytes(raw))
    purge = recordings(data, config, "purge")
    assert purge.returncode == 1
    assert "FAILED h0: h0.wav no longer matches its seal: not purged; investigate first" in purge.stdout
    assert wav.exists() and "4 call(s) purged, 0 held, 1 could not be purged" in purge.stdout


def test_a_purge_cut_short_fails_verify_until_it_is_run_again(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    archive(data, db_url)
    folder = data / "recordings/2024/05/01"
    signer = load_signer(default_key_file(data / "recordings"))
    ((_, sealed),) = call_manifests(folder, "h0")
    append_tombstone(
        folder, sealed, signer, reason="retention 90 days (default)", actor="cron"
    )  # then: crash
    code, lines = verify_lines(data, "h0")
    assert code == 1
    assert "but its files are still here: the purge was cut short; run recordings purge again" in lines[1]

    engine = open_index_database(db_url)
    plan = plan_purge(engine, RetentionPolicy({"default": 90}), datetime.now(UTC))
    h0 = [item for item in plan.due if item.call.call_id == "h0"]
    result = execute_purge(
        data / "recordings", engine, PurgePlan(tuple[PurgeItem, ...](h0), ()), signer, "cron"
    )
    assert (result.purged, result.problems) == (["h0"], [])
    assert not (folder / "h0.wav").exists()
    assert [m.event for _, m in call_manifests(folder, "h0")] == ["sealed", "purged"]  # no second tombstone
    assert verify_lines(data, "h0")[0] == 0
