"""The auditor's pages over a real recordings folder and call index: search with paging (on
SQLite and PostgreSQL), the call page, audio with Range, the bundle, an access-log row for
each, and refusals.

Calls are sealed the way ``serve`` seals them (tests/component/recordings/conftest.py ``record``).
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import text
from starlette.testclient import TestClient

from config.settings import load_settings
from console import recording_access
from console.app import create_app, open_context
from console.web import ConsoleContext
from recordings.access_log import read_access_log
from recordings.database import forget_engines
from tests.component.recordings.conftest import T0, record
from tests.db_fixtures import fresh_database

PASSWORD = "correct horse battery staple"
CALLER = "+15550100123"


@dataclass
class Console:
    context: ConsoleContext
    data: Path

    def client(self, name: str) -> TestClient:
        client = TestClient(create_app(self.context), follow_redirects=False)
        page = client.get("/login")
        token = re.search(r'name="csrf-token" content="([^"]+)"', page.text)
        assert token is not None
        answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token.group(1)})
        assert answer.status_code == 303, answer.text
        return client


@pytest.fixture
def console(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Console]:
    """Four sealed, indexed calls (two at the same instant) and three users, on SQLite, or on a
    fresh PostgreSQL schema for a test parametrized with ``indirect=True``."""
    with contextlib.ExitStack() as stack:
        backend = getattr(request, "param", "sqlite")
        database = fresh_database(backend, tmp_path / "ivr.sqlite3", "console_rec", forget_engines)
        url = stack.enter_context(database)
        yield from _console(tmp_path, url)


def _console(tmp_path: Path, console_db_url: str) -> Iterator[Console]:
    data = tmp_path / "data"
    settings = load_settings(env={}, overrides={"data_dir": str(data), "database.url": console_db_url})
    url = settings.database_url
    record(data, "call-a", start=T0, said="I want to cancel my card", index_url=url)
    record(data, "call-b", start=T0 + timedelta(hours=1), caller="sip:+15550199999@10.0.0.1", index_url=url)
    record(data, "call-c", start=T0 + timedelta(days=2), said="what is my balance", index_url=url)
    record(data, "call-d", start=T0 + timedelta(days=2), said="opening hours", index_url=url)
    context = open_context(settings)
    # argon2 at its real cost takes ~1 s a hash on a loaded CI machine; these tests are not about
    # password hashing (a hash carries its own parameters, so logins still verify).
    context.users.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    now = datetime.now(UTC)
    context.users.add("alice", "auditor", PASSWORD, now)
    context.users.add("max", "manager", PASSWORD, now)
    context.users.add("sam", "manager", PASSWORD, now, grants=frozenset({"recordings.search"}))
    yield Console(context, data)
    context.engine.dispose()
    forget_engines()


def audit_rows(console: Console, action: str) -> list[tuple[str, tuple[str, ...], dict[str, object]]]:
    entries = read_access_log(console.context.index_engine)
    return [(e.actor, e.call_ids, e.detail) for e in entries if e.action == action]


@pytest.mark.parametrize("console", ["sqlite", "postgresql"], indirect=True)
def test_search_by_number_words_and_date_each_leave_an_audit_row(console: Console) -> None:
    alice = console.client("alice")
    page = alice.get("/recordings", params={"number": "(555) 010-0123"})
    assert page.status_code == 200
    assert "call-a" in page.text and "call-c" in page.text and "call-b" not in page.text
    assert CALLER not in page.text and "5550100123" not in page.text, "numbers are shown masked"
    said = alice.get("/recordings", params={"says": "cancel", "speaker": "caller"})
    assert "call-a" in said.text and "call-c" not in said.text
    dated = alice.get("/recordings", params={"from": "2024-05-03", "to": "2024-05-03"})
    assert "call-c" in dated.text and "call-d" in dated.text and "call-a" not in dated.text
    rows = audit_rows(console, "search")
    assert [(actor, set(ids)) for actor, ids, _ in rows] == [
        ("alice", {"call-a", "call-c", "call-d"}),
        ("alice", {"call-a"}),
        ("alice", {"call-c", "call-d"}),
    ]
    assert rows[0][2]["number"] == "(hashed)" and rows[0][2]["via"] == "console"
    bad = alice.get("/recordings", params={"from": "2024-13-45"})
    assert bad.status_code == 400 and "YYYY-MM-DD" in bad.text


@pytest.mark.parametrize("console", ["sqlite", "postgresql"], indirect=True)
def test_paging_walks_every_call_once_even_when_two_started_at_the_same_instant(
    console: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(recording_access, "PAGE_SIZE", 1)
    alice = console.client("alice")
    seen: list[str] = []
    link = "/recordings"
    for _ in range(6):
        page = alice.get(link)
        seen += re.findall(r'href="/recordings/(call-[a-d])"', page.text)
        found = re.search(r'href="(/recordings\?[^"]+)" rel="next"', page.text)
        if found is None:
            break
        link = found.group(1).replace("&amp;", "&")
    assert seen == ["call-c", "call-d", "call-b", "call-a"]


def test_call_page_shows_lanes_transcript_and_verification_and_is_audited(console: Console) -> None:
    alice = console.client("alice")
    page = alice.get("/recordings/call-a")
    assert page.status_code == 200
    assert page.text.count('aria-label="caller waveform"') == 1 and 'aria-label="bot waveform"' in page.text
    assert "I want to cancel my card" in page.text and 'data-start="0.5"' in page.text
    assert 'id="verification">verified<' in page.text
    assert "/recordings/call-a/audio" in page.text and "/recordings/call-a/bundle.zip" in page.text
    assert CALLER not in page.text and "5550100123" not in page.text
    assert audit_rows(console, "show") == [("alice", ("call-a",), {"page": "call", "via": "console"})]
    assert alice.get("/recordings/no-such-call").status_code == 404
    assert alice.get("/recordings/..%2Fetc").status_code == 404


def test_audio_answers_range_requests_and_every_fetch_is_audited(console: Console) -> None:
    alice = console.client("alice")
    wav = next((console.data / "recordings").rglob("call-a.wav")).read_bytes()
    whole = alice.get("/recordings/call-a/audio")
    assert whole.status_code == 200 and whole.content == wav and whole.headers["accept-ranges"] == "bytes"
    part = alice.get("/recordings/call-a/audio", headers={"Range": "bytes=44-143"})
    assert part.status_code == 206 and part.content == wav[44:144]
    assert part.headers["content-range"] == f"bytes 44-143/{len(wav)}"
    rows = audit_rows(console, "play")
    assert [(actor, ids, detail["range"]) for actor, ids, detail in rows] == [
        ("alice", ("call-a",), ""),
        ("alice", ("call-a",), "bytes=44-143"),
    ]


def test_bundle_download_is_a_verifiable_zip_and_is_audited(console: Console) -> None:
    alice = console.client("alice")
    answer = alice.get("/recordings/call-a/bundle.zip")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(answer.content)).namelist()
    assert "calls/call-a/call-a.wav" in names and "VERIFY.txt" in names and "public-key.pem" in names
    assert [(actor, ids) for actor, ids, _ in audit_rows(console, "export")] == [("alice", ("call-a",))]


def test_a_manager_is_refused_with_no_data_and_search_alone_does_not_open_a_call(console: Console) -> None:
    manager = console.client("max")
    for path in (
        "/recordings",
        "/recordings/call-a",
        "/recordings/call-a/audio",
        "/recordings/call-a/bundle.zip",
    ):
        answer = manager.get(path)
        assert answer.status_code == 403, path
        assert (
            "call-a" not in answer.text.replace("/recordings/call-a", "")
            and "cancel my card" not in answer.text
        )
    searcher = console.client("sam")
    assert "call-a" in searcher.get("/recordings").text
    assert searcher.get("/recordings/call-a").status_code == 403
    assert searcher.get("/recordings/call-a/audio").status_code == 403
    actions = {e.action for e in read_access_log(console.context.index_engine)}
    assert actions == {"search"}, "refused requests leave no access row and show nothing"


def test_no_audit_row_means_nothing_is_shown(console: Console) -> None:
    alice = console.client("alice")
    with console.context.index_engine.begin() as conn:
        conn.execute(text("DROP TABLE recording_access_log"))
    for path in ("/recordings/call-a", "/recordings/call-a/audio", "/recordings"):
        answer = alice.get(path)
        assert answer.status_code == 503, path
        assert "cancel my card" not in answer.text and "access log" in answer.text
    assert json.dumps(answer.text)  # a plain error text, no page


def test_a_changed_byte_shows_as_a_failed_verification(console: Console) -> None:
    alice = console.client("alice")
    wav = next((console.data / "recordings").rglob("call-b.wav"))
    data = bytearray(wav.read_bytes())
    data[-1] ^= 0x01
    wav.write_bytes(bytes(data))
    page = alice.get("/recordings/call-b")
    assert 'id="verification">failed<' in page.text
    assert "WAV call-b.wav changed since it was sealed" in page.text
    assert 'id="verification">verified<' in alice.get("/recordings/call-a").text
    refused = alice.get("/recordings/call-b/bundle.zip")
    assert refused.status_code == 409 and "changed since it was sealed" in refused.text
    assert audit_rows(console, "export") == []
