"""The access log (who, when, what, where; append-only), the time filters an auditor types, and
search filters that are refused with a clear message. SQLite in a temp folder."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from recordings import RecordingError
from recordings.access_log import current_accessor, read_access_log, record_access
from recordings.call_search import SearchFilters, search
from recordings.cli_common import parse_when
from recordings.database import IndexDatabaseError, forget_engines, open_index_database
from recordings.sidecar import Sidecar, read_sidecar, write_sidecar

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    yield open_index_database(f"sqlite:///{tmp_path / 'data' / 'ivr.sqlite3'}")
    forget_engines()


def test_database_file_and_folder_are_private(tmp_path: Path, engine: Engine) -> None:
    folder = tmp_path / "data"
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}
    assert modes == {"ivr.sqlite3": 0o600, "ivr.sqlite3-wal": 0o600, "ivr.sqlite3-shm": 0o600}
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700


def test_an_existing_readable_database_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    open_index_database(f"sqlite:///{path}")
    forget_engines()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_access_is_a_row_naming_who_what_which_calls_and_where(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSH_CONNECTION", "192.0.2.7 50000 192.0.2.1 22")
    who = current_accessor("Ann Auditor")
    record_access(engine, who, "search", ["c2", "c1", "c2"], detail={"says": "cancel"}, now=NOW)
    record_access(engine, current_accessor(), "show", ["c1"], now=NOW + timedelta(hours=1))
    first, second = read_access_log(engine)
    assert (first.actor, first.action, first.call_ids, first.call_count) == (
        "Ann Auditor",
        "search",
        ("c2", "c1"),
        2,
    )
    assert first.detail == {"says": "cancel"} and first.at == NOW and first.remote == "192.0.2.7"
    assert first.os_user and first.host and first.pid > 0
    assert second.actor == second.os_user.split(" ")[0]  # no --as: the OS user
    assert [e.action for e in read_access_log(engine, since=NOW + timedelta(minutes=1))] == ["show"]
    assert [e.action for e in read_access_log(engine, limit=1)] == ["show"]
    assert json.loads(json.dumps(first.to_json()))["call_ids"] == ["c2", "c1"]


def test_the_access_log_refuses_updates_and_deletes(engine: Engine) -> None:
    record_access(engine, current_accessor("x"), "list", ["c1"], now=NOW)
    for statement in ("UPDATE recording_access_log SET actor = 'nobody'", "DELETE FROM recording_access_log"):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(text(statement))
    assert [e.actor for e in read_access_log(engine)] == ["x"]


def test_an_unwritable_access_log_refuses_the_access(tmp_path: Path) -> None:
    engine = open_index_database(f"sqlite:///{tmp_path / 'ivr.sqlite3'}")
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE recording_access_log"))
    with pytest.raises(IndexDatabaseError, match="refusing to show calls without an audit trail"):
        record_access(engine, current_accessor("x"), "show", ["c1"])
    forget_engines()


@pytest.mark.parametrize("name", ["", "   ", "a\nb", "x" * 201])
def test_as_must_name_someone(name: str) -> None:
    with pytest.raises(RecordingError, match="--as"):
        current_accessor(name)


def test_sudo_user_is_kept_beside_the_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUDO_USER", "mallory-not-root")
    assert current_accessor().os_user.endswith("(sudo by mallory-not-root)")


@pytest.mark.parametrize(
    ("typed", "end", "expected"),
    [
        ("2024-05-01", False, datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-01", True, datetime(2024, 5, 2, tzinfo=UTC)),
        ("2024-05-01T09:30", False, datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01T11:30+02:00", False, datetime(2024, 5, 1, 9, 30, tzinfo=UTC)),
        ("2024-05-01T09:30Z", True, datetime(2024, 5, 1, 9, 30, 0, 1, tzinfo=UTC)),
        ("7d", False, NOW - timedelta(days=7)),
        ("24h", False, NOW - timedelta(hours=24)),
        ("today", False, NOW.replace(hour=0, minute=0, second=0, microsecond=0)),
        ("Yesterday", True, NOW.replace(hour=0, minute=0, second=0, microsecond=0)),
    ],
)
def test_when_an_auditor_types_a_time(typed: str, end: bool, expected: datetime) -> None:
    assert parse_when(typed, "--from", end_of_day=end, now=NOW) == expected


@pytest.mark.parametrize("typed", ["2024-13-01", "last tuesday", "05/01/2024", "7 days"])
def test_a_time_that_is_not_one_is_refused_naming_the_flag(typed: str) -> None:
    with pytest.raises(RecordingError, match=rf"--to '{typed}': not a date or time; use YYYY-MM-DD"):
        parse_when(typed, "--to")


@pytest.mark.parametrize(
    ("filters", "limit", "message"),
    [
        (SearchFilters(speaker="caller"), 10, "--speaker narrows --says"),
        (
            SearchFilters(says="cancel", speaker="operator"),
            10,
            "--speaker 'operator' is not one of caller, bot, agent",
        ),
        (SearchFilters(says="?!"), 10, "--says '?!': no word to search for"),
        (SearchFilters(), 0, "--limit 0: must be at least 1"),
    ],
)
def test_bad_search_filters_are_refused(
    engine: Engine, filters: SearchFilters, limit: int, message: str
) -> None:
    with pytest.raises(RecordingError) as info:
        search(engine, filters, limit)
    assert message in str(info.value)


def test_fts_syntax_in_the_words_is_searched_as_words(engine: Engine) -> None:
    """Quotes, stars, NEAR and column names are not query syntax: they can neither fail nor widen."""
    for says in ('cancel" OR "*', "caller: NEAR(cancel)", "bot : x*", "AND"):
        assert search(engine, SearchFilters(says=says)).calls == ()


def test_sidecar_number_hashes_round_trip_and_are_checked(tmp_path: Path) -> None:
    sidecar = Sidecar(
        "c1",
        "inbound",
        "+*********23",
        "sip:***@pbx",
        NOW,
        "c1.wav",
        number_key_id="0123456789abcdef",
        from_hmac="a" * 64,
        to_hmac="",
    )
    path = tmp_path / "c1.json"
    write_sidecar(path, sidecar)
    again = read_sidecar(path)
    assert (again.number_key_id, again.from_hmac, again.to_hmac) == ("0123456789abcdef", "a" * 64, "")
    raw = json.loads(path.read_text())
    raw["numbers"]["from"] = "+15550100123"
    path.write_text(json.dumps(raw))
    with pytest.raises(RecordingError, match=r"numbers.from: '\+15550100123' is not a hex HMAC-SHA256"):
        read_sidecar(path)
