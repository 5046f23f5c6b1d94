"""QA verdicts in the call index, on SQLite and PostgreSQL: ``recordings qa`` (and the live call's
:func:`check_and_store`) update the call's row, so ``search --qa`` and ``--qa-rule`` filter in
SQL and ``search``, ``list`` and ``show`` show the verdict; ``reindex`` reads the QA files, and a
QA file that judged other sidecar bytes is ignored."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from alembic import command as alembic_command
from alembic.config import Config
from sqlalchemy import text

from recordings.call_search import find_call
from recordings.database import MIGRATIONS_DIR, make_engine, open_index_database
from recordings.index_spool import pending
from recordings.qa_batch import check_and_store, check_recording
from recordings.qa_file import qa_path_for
from recordings.qa_rules_loader import load_rules
from tests.component.recordings.conftest import T0, config_file, record, recordings

pytestmark = [pytest.mark.component, pytest.mark.usefixtures("cli_environment")]
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"
RULES = """qa: {name: words, applies_to: {flows: [hotline]}}
rules:
  - {id: no_cancel, kind: forbidden_phrases, speaker: caller, phrases: [cancel]}
  - {id: greets, kind: required_prompt, text: Welcome}
"""


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "words.yaml"
    path.write_text(RULES)
    return path


def searched(data: Path, config: Path | None, *args: str) -> list[dict[str, Any]]:
    result = recordings(data, config, "search", "--json", *args)
    assert result.returncode == 0, result.stderr
    calls: list[dict[str, Any]] = json.loads(result.stdout)
    return calls


def sidecar_of(data: Path, call_id: str) -> Path:
    return next((data / "recordings").rglob(f"{call_id}.json"))


def test_recordings_qa_fills_the_index_and_search_filters_by_it(
    tmp_path: Path, db_url: str, rules_file: Path
) -> None:
    data = tmp_path / "data"
    config = config_file(data, db_url)
    record(data, "c1", said="I want to cancel", index_url=db_url)
    record(data, "c2", start=T0 + timedelta(hours=1), index_url=db_url)
    record(data, "c3", start=T0 + timedelta(hours=2), flow="survey")  # spooled, no rules claim it

    judged = recordings(data, config, "qa", "--rules", str(rules_file), "--no-progress")
    assert judged.returncode == 1, judged.stdout + judged.stderr  # c1 failed
    assert [line for line in judged.stderr.splitlines() if not line.startswith("ts=")] == []  # logs only

    (c1,) = searched(data, config, "--qa", "fail")
    assert c1["call_id"] == "c1"
    assert c1["qa"] == {"status": "fail", "score": 50.0, "failed_rules": ["no_cancel"]}
    assert [c["call_id"] for c in searched(data, config, "--qa", "pass")] == ["c2"]
    assert [c["call_id"] for c in searched(data, config, "--qa", "none")] == ["c3"]
    assert [c["qa"] for c in searched(data, config, "--qa", "none")] == [None]
    assert [c["call_id"] for c in searched(data, config, "--qa-rule", "no_cancel")] == ["c1"]
    assert searched(data, config, "--qa-rule", "no") == []  # a whole rule id, not a prefix
    assert searched(data, config, "--qa-rule", "greets") == []
    assert [c["call_id"] for c in searched(data, config, "--qa", "fail", "--says", "cancel")] == ["c1"]

    table = recordings(data, config, "search").stdout.splitlines()
    assert table[0].split()[-1] == "QA"
    assert table[-1].split()[2] == "c1" and table[-1].endswith("fail 50")
    assert table[-2].split()[2] == "c2" and table[-2].endswith("pass 100")
    listed = json.loads(recordings(data, config, "list", "--json").stdout)
    assert [(c["call_id"], c["qa"] and c["qa"]["status"]) for c in listed] == [
        ("c1", "fail"),
        ("c2", "pass"),
        ("c3", None),
    ]
    assert recordings(data, config, "list").stdout.splitlines()[1].endswith("complete  fail 50")
    shown = recordings(data, config, "show", "c1").stdout
    assert "qa:           fail 50 (failed: no_cancel)" in shown
    assert "qa:           not judged" in recordings(data, config, "show", "c3").stdout

    log = json.loads(recordings(data, config, "audit", "--json").stdout)
    assert {"qa": "fail"} in [{k: v for k, v in row["detail"].items() if k == "qa"} for row in log]


def test_bad_qa_filters_are_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    record(data, "c1")
    refused = {
        ("--qa", "failed"): "invalid choice: 'failed'",
        ("--qa-rule", "no%cancel"): "--qa-rule 'no%cancel': not a rule id",
        ("--qa", "none", "--qa-rule", "greets"): "--qa none finds calls not judged",
    }
    for args, message in refused.items():
        result = recordings(data, None, "search", *args)
        assert result.returncode == 2 and message in result.stderr, (args, result.stderr)


def test_reindex_reads_qa_files_and_ignores_a_stale_one(
    tmp_path: Path, db_url: str, rules_file: Path
) -> None:
    data = tmp_path / "data"
    config = config_file(data, db_url)
    record(data, "c1", said="cancel it", index_url=db_url)
    sidecar = sidecar_of(data, "c1")
    check_recording(sidecar, load_rules(rules_file))  # the file only: the index is not told
    assert searched(data, config, "--qa", "fail") == []

    assert "1 call(s) indexed, 0 unchanged" in recordings(data, config, "reindex").stdout
    assert [c["call_id"] for c in searched(data, config, "--qa", "fail")] == ["c1"]
    assert "0 call(s) indexed, 1 unchanged" in recordings(data, config, "reindex").stdout

    qa_file = qa_path_for(sidecar)
    document = json.loads(qa_file.read_text())
    document["sidecar_sha256"] = "0" * 64  # judged other bytes than the sealed sidecar's
    qa_file.write_text(json.dumps(document))
    assert "1 call(s) indexed" in recordings(data, config, "reindex").stdout
    assert [c["qa"] for c in searched(data, config)] == [None]


def test_check_and_store_at_the_end_of_a_live_call(
    tmp_path: Path, db_url: str, rules_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = tmp_path / "data"
    root = data / "recordings"
    config = config_file(data, db_url)
    rules = load_rules(rules_file)
    record(data, "c1", said="cancel", index_url=db_url)
    call = check_and_store(sidecar_of(data, "c1"), rules, root=root, index_url=db_url)
    assert call is not None and call.result is not None and call.result.status == "fail"
    assert call.qa_path == qa_path_for(sidecar_of(data, "c1")) and call.qa_path.exists()
    indexed = find_call(open_index_database(db_url), "c1")
    assert indexed is not None and indexed.qa is not None and indexed.qa.failed_rules == ("no_cancel",)
    assert pending(root) == []

    # the database is down: the verdict waits in the spool for the next command
    record(data, "c2", start=T0 + timedelta(hours=1), said="cancel", index_url=db_url)
    later = check_and_store(sidecar_of(data, "c2"), rules, root=root, index_url=DOWN)
    assert later is not None and later.result is not None
    assert [call_id for call_id, _ in pending(root)] == ["c2"]
    assert [c["call_id"] for c in searched(data, config, "--qa", "fail")] == ["c2", "c1"]

    # not claimed by the rules: skipped, no QA file
    record(data, "c3", start=T0 + timedelta(hours=2), flow="survey", index_url=db_url)
    skipped = check_and_store(sidecar_of(data, "c3"), rules, root=root, index_url=db_url)
    assert skipped is not None and skipped.result is None and "survey" in skipped.skipped

    # a QA problem is logged, never raised
    with caplog.at_level(logging.WARNING, logger="ivr.recordings"):
        assert check_and_store(root / "missing.json", rules, root=root, index_url=db_url) is None
    assert "qa_not_checked" in caplog.text


def test_an_index_made_before_qa_columns_is_upgraded_in_place(tmp_path: Path, db_url: str) -> None:
    """r0001 -> r0002 keeps every row; calls indexed before are 'not judged' until reindexed."""
    engine = make_engine(db_url)
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        alembic_command.upgrade(cfg, "r0001")
        conn.commit()
        conn.execute(
            text(
                "INSERT INTO recording_calls (call_id, direction, status, started_at, flow, flow_version,"
                " outcome, campaign, contact_id, number_key_id, from_masked, to_masked, turns,"
                " sidecar_path, sidecar_sha256, indexed_at) VALUES ('old', 'inbound', 'complete',"
                " '2024-05-01 09:00:00', 'hotline', '1', '', '', '', '', '', '', 0, 'x.json', '', "
                " '2024-05-01 09:00:00')"
            )
        )
        conn.commit()
    engine.dispose()
    upgraded = open_index_database(db_url)
    with upgraded.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM recordings_alembic_version")).scalar() == "r0002"
    old = find_call(upgraded, "old")
    assert old is not None and old.qa is None
