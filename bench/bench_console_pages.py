"""How long every console page that lists data takes with 100,000 contacts, 100,000 attempts
and 100,000 indexed calls, on SQLite or PostgreSQL.

Builds once (bulk inserts, as bench_wallboard.py and bench_call_index.py do), fills the
wallboard's counters the way the schema upgrade does (``dialer.hourly_counters.rebuild``),
then times each page through starlette's TestClient, logged in with the role it needs:
the campaign list, the wallboard page and its live fragment, the contacts page (first page,
a state filter, a page deep in the list), a contact's history, the recordings search (no
filter, by number, by words, by dates and outcome, the next page) and the live calls page
with ``--live`` calls in progress. Every page must answer 200. Prints a Markdown table of the
median and slowest of ``--runs`` requests and the load average before and after.

    .venv/bin/python bench/bench_console_pages.py [--postgres] [--contacts 100000]
        [--attempts 100000] [--calls 100000] [--runs 5] [--live 200]

On PostgreSQL the tables are vacuumed and analysed after the bulk load (what autovacuum does
within a minute of it); ``--no-analyze`` times the pages straight after the load.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argon2 import PasswordHasher
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from bench import bench_call_index
from bench.bench_wallboard import build, database
from config.settings import load_settings
from console.app import create_app, open_context
from console.users import UserStore
from console.web import ConsoleContext
from dialer.hourly_counters import rebuild
from dialer.models import Attempt, Contact
from recordings.call_index import index_rows
from recordings.numbers import load_number_key, number_key_path

PASSWORD = "correct horse battery"
LINKS = re.compile(
    r'href="(?:http://testserver)?/(?:recordings/[^"/?]+|campaigns/[^"/]+/contacts/\d+)"|live-\d{5}'
)
"""A listed call, contact or live call (the rows a page shows, counted to show it found some)."""


def log_in(client: TestClient, context: ConsoleContext, role: str) -> None:
    context.users.add(role, role, PASSWORD, datetime.now(UTC), frozenset())
    token = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
    response = client.post(
        "/login", data={"name": role, "password": PASSWORD, "csrf": token}, follow_redirects=False
    )
    assert response.status_code == 303, response.text[:300]


def index_calls(context: ConsoleContext, count: int) -> str:
    """``count`` synthetic calls in the call index (bench_call_index.py's), their numbers hashed
    with the console's own key so that a number search finds them; returns a number with
    several calls."""
    bench_call_index.KEY = load_number_key(number_key_path(context.settings))
    rows, number = bench_call_index.synthetic_rows(count)
    index_rows(context.index_engine, rows)
    return str(number)


def timed(client: TestClient, path: str, runs: int) -> tuple[float, float, int]:
    """Median and slowest time in ms, and how many links to a call or a contact the page has."""
    took = []
    links = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(path)
        took.append(time.perf_counter() - started)
        assert response.status_code == 200, f"{path}: {response.status_code} {response.text[:300]}"
        links = len(set(LINKS.findall(response.text)))
    return statistics.median(took) * 1000, max(took) * 1000, links


def pages(context: ConsoleContext, number: str, live: int) -> list[tuple[str, str, str]]:
    """(role, label, path) of every page timed."""
    with Session(context.engine) as session:
        middle = session.scalar(select(func.max(Contact.id))) or 0
        middle //= 2
        busiest = session.execute(
            select(Attempt.contact_id).group_by(Attempt.contact_id).order_by(func.count().desc()).limit(1)
        ).scalar_one()
    day = datetime(2024, 3, 31)
    return [
        ("manager", "campaign list", "/campaigns"),
        ("manager", "wallboard page", "/campaigns/big"),
        ("manager", "wallboard fragment (each SSE update)", "/campaigns/big/board"),
        ("manager", "contacts, first page", "/campaigns/big/contacts"),
        ("manager", "contacts, state=pending", "/campaigns/big/contacts?state=pending"),
        ("manager", "contacts, page at the middle", f"/campaigns/big/contacts?after={middle}"),
        ("manager", "contacts, state=done, middle", f"/campaigns/big/contacts?state=done&after={middle}"),
        ("manager", "contact history (most attempts)", f"/campaigns/big/contacts/{busiest}"),
        ("auditor", "recordings search, no filter", "/recordings"),
        ("auditor", "recordings search, by number", "/recordings?" + urlencode({"number": number})),
        ("auditor", "recordings search, says cancel", "/recordings?says=cancel&speaker=caller"),
        (
            "auditor",
            "recordings search, one day + outcome",
            "/recordings?"
            + urlencode({"from": f"{day:%Y-%m-%d}", "to": f"{day:%Y-%m-%d}", "outcome": "cancelled"}),
        ),
        (
            "auditor",
            "recordings search, next page",
            "/recordings?" + urlencode({"before": "2024-05-01T00:00:00+00:00", "skip": "0"}),
        ),
        ("supervisor", f"live calls ({live} in progress)", "/live"),
    ]


def feed_live_calls(app: Any, client: TestClient, count: int) -> None:
    """``count`` calls in progress in the app's live view, as the engine's MQTT events make them."""
    client.get("/live")  # makes the app's feed
    feed = app.state.live_feed
    prefix = feed.settings.topic_prefix
    now = datetime.now(UTC)
    for i in range(count):
        call = f"live-{i:05d}"
        feed.fold(
            f"{prefix}/call/{call}/connected",
            b'{"flow": "hotline", "direction": "inbound", "remote": "+1***12"}',
            now,
        )
        feed.fold(f"{prefix}/call/{call}/step", b'{"step": "ask_balance"}', now)
        for n in range(3):
            line = f'{{"speaker": "caller", "kind": "final", "text": "I want to check my balance {n}"}}'
            feed.fold(f"{prefix}/call/{call}/transcript", line.encode(), now)
    assert len(feed.calls.view(now)) == count, "the live calls were not folded in"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL (a fresh schema) instead of SQLite"
    )
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--live", type=int, default=200)
    parser.add_argument("--no-analyze", action="store_true")
    args = parser.parse_args()
    before = os.getloadavg()
    with database(args.postgres) as url, tempfile.TemporaryDirectory(prefix="bench-console-") as data:
        settings = load_settings(env={}, overrides={"data_dir": data, "database.url": url})
        context = open_context(settings)
        context.users = UserStore(
            context.engine, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        context.refresh_s = 0.0  # the board cache off: every request reads afresh
        engine = context.engine
        started = time.perf_counter()
        build(engine, args.contacts, args.attempts, random.Random(7))
        built = time.perf_counter() - started
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            rebuild(session)
        counted = time.perf_counter() - started
        started = time.perf_counter()
        number = index_calls(context, args.calls)
        indexed = time.perf_counter() - started
        if engine.dialect.name == "postgresql" and not args.no_analyze:
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))
        print(
            f"{engine.dialect.name}: {args.contacts} contacts + {args.attempts} attempts"
            f" built in {built:.1f} s, counters filled in {counted:.1f} s,"
            f" {args.calls} calls indexed in {indexed:.1f} s"
        )
        app = create_app(context)
        clients: dict[str, TestClient] = {}
        results = []
        with ExitStack() as stack:  # each client runs the app's lifespan (the live feed is closed)
            for role, label, path in pages(context, number, args.live):
                if role not in clients:
                    clients[role] = stack.enter_context(TestClient(app))
                    log_in(clients[role], context, role)
                    if role == "supervisor":
                        feed_live_calls(app, clients[role], args.live)
                median, worst, size = timed(clients[role], path, args.runs)
                results.append((label, median, worst, size))
                print(f"  {label}: median {median:.0f} ms, max {worst:.0f} ms, {size} rows", flush=True)
        engine.dispose()
        context.index_engine.dispose()
    after = os.getloadavg()
    print()
    print(f"| page ({'PostgreSQL' if args.postgres else 'SQLite'}) | median ms | max ms | rows shown |")
    print("| --- | --- | --- | --- |")
    for label, median, worst, rows in results:
        print(f"| {label} | {median:.0f} | {worst:.0f} | {rows} |")
    print(f"\nload average before {before[0]:.1f} {before[1]:.1f}, after {after[0]:.1f} {after[1]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
