"""The call index on SQLite and PostgreSQL: calls sealed by the recorder are found by number, date
and by what each speaker said; numbers are never stored in clear; the index catches up with calls
sealed while the database was down and is rebuilt from the sidecars."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine, select, text

from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder, recover_unfinished
from recordings.call_index import index_pending, reindex
from recordings.call_search import SearchFilters, search
from recordings.database import open_index_database
from recordings.index_spool import UNINDEXED_DIR, pending
from recordings.numbers import default_number_key_file, load_number_key
from recordings.schema import calls
from recordings.signing import default_key_file
from tests.component.recordings.conftest import T0, record

pytestmark = pytest.mark.component
DOWN = "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"


def found(engine: Engine, **filters: object) -> list[str]:
    return [call.call_id for call in search(engine, SearchFilters(**filters)).calls]  # type: ignore[arg-type]


def archive(data: Path, db_url: str) -> Engine:
    """Four calls over three days: two from one number, one outbound campaign call."""
    record(data, "c1", said="I want to cancel my subscription", outcome="cancelled", index_url=db_url)
    record(
        data,
        "c2",
        start=T0 + timedelta(days=1),
        caller="sip:+15550100999@10.0.0.1",
        said="what is my balance",
        bot="Would you like to cancel anything?",
        index_url=db_url,
    )
    record(
        data,
        "c3",
        start=T0 + timedelta(days=2),
        direction="outbound",
        caller="sip:100@pbx",
        callee="+15550100123",
        said="please call me back tomorrow",
        outcome="callback",
        flow="callback",
        tags={"campaign": "renewals", "contact_id": "42"},
        index_url=db_url,
    )
    record(
        data,
        "c4",
        start=T0 + timedelta(days=2, hours=3),
        caller="sip:anonymous@10.0.0.1",
        said="I cancelled it already",
        outcome="cancelled",
        index_url=db_url,
    )
    return open_index_database(db_url)


def test_sealed_calls_are_found_by_number_date_words_and_names(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    engine = archive(data, db_url)
    assert pending(data / "recordings") == []  # indexed when sealed, nothing left in the spool
    key = load_number_key(default_number_key_file(default_key_file(data / "recordings")))

    # a number in any format finds both parties' calls: c1 (caller) and c3 (callee)
    for typed in ("+15550100123", "+1 (555) 010-0123", "15550100123", "555-010-0123"):
        assert found(engine, number_digests=key.search_digests(typed, "US")) == ["c3", "c1"], typed
    assert found(engine, number_digests=key.search_digests("anonymous", "US")) == ["c4"]
    assert found(engine, number_digests=key.search_digests("+15550100000", "US")) == []

    # dates: [from, before)
    assert found(engine, started_from=T0 + timedelta(days=1)) == ["c4", "c3", "c2"]
    assert found(engine, started_from=T0 + timedelta(days=1), started_before=T0 + timedelta(days=2)) == ["c2"]

    # words: stemmed, any speaker or one; a phrase keeps its order
    assert found(engine, says="cancel") == ["c4", "c2", "c1"]
    assert found(engine, says="cancel", speaker="caller") == ["c4", "c1"]
    assert found(engine, says="cancel", speaker="bot") == ["c2"]
    assert found(engine, says="cancel my subscription") == ["c1"]
    assert found(engine, says="subscription my cancel") == []
    assert found(engine, says="BALANCE", speaker="caller") == ["c2"]

    # exact names, combined filters
    assert found(engine, outcome="cancelled") == ["c4", "c1"]
    assert found(engine, flow="callback") == ["c3"]
    assert found(engine, campaign="renewals") == ["c3"]
    assert found(
        engine, outcome="cancelled", says="cancel", speaker="caller", started_from=T0 + timedelta(hours=1)
    ) == ["c4"]

    c3 = search(engine, SearchFilters(campaign="renewals")).calls[0]
    assert (c3.direction, c3.contact_id, c3.remote_masked, c3.duration_s) == (
        "outbound",
        "42",
        "+*********23",
        1.0,
    )
    limited = search(engine, SearchFilters(), limit=2)
    assert [c.call_id for c in limited.calls] == ["c4", "c3"] and limited.more


def test_no_number_is_stored_in_clear(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    engine = archive(data, db_url)
    with engine.connect() as conn:
        rows = [" ".join(map(str, row)) for row in conn.execute(select(calls))]
    dump = "\n".join(rows)
    assert "5550100123" not in dump and "5550100999" not in dump
    assert "+*********23" in dump  # masked, for display
    for path in (data / "recordings").rglob("*.json"):
        assert "5550100123" not in path.read_text()


def test_call_sealed_while_the_database_is_down_is_indexed_by_the_next_command(
    tmp_path: Path, db_url: str
) -> None:
    data = tmp_path / "data"
    record(data, "early", index_url=db_url)
    record(data, "while-down", start=T0 + timedelta(hours=1), said="cancel it", index_url=DOWN)
    record(data, "no-db", start=T0 + timedelta(hours=2), said="cancel that")  # a recorder given no URL
    root = data / "recordings"
    assert [call_id for call_id, _ in pending(root)] == ["no-db", "while-down"]
    engine = open_index_database(db_url)
    assert found(engine, says="cancel") == []
    report = index_pending(root, engine)
    assert (report.indexed, report.problems) == (2, [])
    assert found(engine, says="cancel") == ["no-db", "while-down"]
    assert pending(root) == [] and not any((root / UNINDEXED_DIR).iterdir())
    # the next seal also drains a backlog left by an earlier outage
    record(data, "down-again", start=T0 + timedelta(hours=3), index_url=DOWN)
    record(data, "up-again", start=T0 + timedelta(hours=4), index_url=db_url)
    assert pending(root) == []
    assert len(found(engine)) == 5


def test_reindex_rebuilds_from_sidecars_and_is_idempotent(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    engine = archive(data, db_url)
    root = data / "recordings"
    with engine.begin() as conn:  # lose the index (a restored backup, a new database)
        if conn.dialect.name == "sqlite":
            conn.execute(text("DELETE FROM recording_transcripts"))
        conn.execute(calls.delete())
    assert found(engine) == []
    first = reindex(root, engine)
    assert (first.indexed, first.unchanged, first.removed, first.problems) == (4, 0, 0, [])
    assert found(engine, says="cancel", speaker="caller") == ["c4", "c1"]
    again = reindex(root, engine)
    assert (again.indexed, again.unchanged, again.removed) == (0, 4, 0)
    (root / "2024/05/03/c3.wav").unlink()
    (root / "2024/05/03/c3.json").unlink()
    gone = reindex(root, engine)
    assert (gone.indexed, gone.unchanged, gone.removed) == (0, 3, 1)
    assert found(engine, campaign="renewals") == [] and found(engine, says="call me back") == []


def test_concurrent_first_use_creates_the_tables_once(tmp_path: Path, db_url: str) -> None:
    """Several serve workers opening the index at once: the migration runs once, nobody fails."""
    code = "import sys; from recordings.database import open_index_database; open_index_database(sys.argv[1])"
    root = Path(__file__).resolve().parents[3]
    procs = [
        subprocess.Popen([sys.executable, "-c", code, db_url], cwd=root, stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    errors = [proc.communicate(timeout=60)[1] for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0, 0], errors
    engine = open_index_database(db_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM recordings_alembic_version")).scalars().all() == [
            "r0002"
        ]


def test_a_call_recovered_after_a_crash_is_indexed_as_interrupted(tmp_path: Path, db_url: str) -> None:
    data = tmp_path / "data"
    root = data / "recordings"
    rec = DualTrackRecorder(root, "crashed", CallMetadata("inbound", "+15550100123", "sip:100@pbx", T0))
    for _ in range(25):
        rec.push_caller(np.full(FRAME_SAMPLES, 100, dtype=np.int16))
    rec.add_turn("caller", "I want to cancel", 0.0, 0.4)
    rec.tick(T0 + timedelta(seconds=0.5))
    rec._writer.close()  # the process dies here: never closed, never sealed
    assert pending(root) == []
    report = recover_unfinished(root)
    assert [p.name for p in report.recovered] == ["crashed.json"]
    assert [call_id for call_id, _ in pending(root)] == ["crashed"]
    engine = open_index_database(db_url)
    index_pending(root, engine)
    (call,) = search(engine, SearchFilters(says="cancel", speaker="caller")).calls
    assert (call.call_id, call.status) == ("crashed", "interrupted")
