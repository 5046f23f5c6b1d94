"""How long a campaign's status and wallboard take at 100,000 contacts and 100,000 attempts.

Builds one campaign with bulk inserts, then times in the same run: the rates computed the old
way (every attempt streamed into Python, :class:`dialer.rates.Tally`), ``campaign_status`` with
the rates counted in SQL, the counters filled from the attempts (as the schema upgrade does),
``campaign_status`` reading them (:mod:`dialer.hourly_counters`, what the wallboard reads), and
the console's wallboard page and fragment through starlette's TestClient as a logged-in
manager. Checks that the three ways give the same figures. Prints the
load average: the machine is shared, so compare figures of one run.

    .venv/bin/python bench/bench_wallboard.py [--contacts 100000] [--attempts 100000] [--postgres]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from argon2 import PasswordHasher
from sqlalchemy import Engine, create_engine, insert, select, text
from sqlalchemy.orm import Session
from starlette.testclient import TestClient

from config.settings import load_settings
from console.app import create_app, open_context
from console.users import UserStore
from dialer.hourly_counters import FACT_COLUMNS, rebuild
from dialer.models import Attempt, Campaign, Contact
from dialer.rates import AttemptFacts, Rates, Tally, hour_of, success_outcomes
from dialer.rates_sql import campaign_rates, hourly_rates
from dialer.status import OFCOM_WINDOW, campaign_status

PG_ADMIN_URL = os.environ.get("IVR_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
RESULTS = ["answered_human"] * 4 + ["answered_machine"] * 2 + ["no_answer"] * 3 + ["busy", "cancelled"]
OUTCOMES = ["confirmed", "declined", None]
CHUNK = 10_000


@contextmanager
def database(postgres: bool) -> Iterator[str]:
    """A fresh SQLite file or PostgreSQL schema, removed afterwards."""
    if not postgres:
        with tempfile.TemporaryDirectory(prefix="bench-wallboard-") as tmp:
            yield f"sqlite:///{tmp}/ivr.sqlite3"
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    schema = f"bench_wallboard_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def build(engine: Engine, contacts: int, attempts: int, rng: random.Random) -> None:
    """One running campaign; attempts over the last 72 h, about a third answered by a person."""
    with Session(engine) as session, session.begin():
        camp = Campaign(
            name="big",
            kind="compliance_callback",
            flow="flows/library/callback.yaml",
            state="running",
            created_at=NOW,
        )
        session.add(camp)
        session.flush()
        camp_id = camp.id
    rows: list[dict[str, Any]] = [
        {
            "campaign_id": camp_id,
            "row_number": i + 2,
            "phone": f"+86{13800000000 + i}",
            "raw_phone": str(13800000000 + i),
            "timezone": "Asia/Shanghai",
            "next_attempt_at": NOW + timedelta(minutes=rng.randint(-60, 600)),
            "window_end": NOW + timedelta(minutes=rng.randint(-600, 6000)),
            "state": rng.choice(["pending", "pending", "done", "done", "done"]),
            "attempts": 1,
            "outcome": rng.choice(OUTCOMES),
            "fields": {},
        }
        for i in range(contacts)
    ]
    with engine.begin() as conn:
        for start in range(0, len(rows), CHUNK):
            conn.execute(insert(Contact), rows[start : start + CHUNK])
        first, last = (
            conn.execute(
                select(Contact.id).where(Contact.campaign_id == camp_id).order_by(Contact.id).limit(1)
            ).scalar_one(),
            conn.execute(select(Contact.id).order_by(Contact.id.desc()).limit(1)).scalar_one(),
        )
    batch: list[dict[str, Any]] = []
    with engine.begin() as conn:
        for _ in range(attempts):
            invite = NOW - timedelta(seconds=rng.uniform(0, 72 * 3600))
            result = rng.choice(RESULTS)
            answered = (
                invite + timedelta(seconds=rng.uniform(3, 20)) if result.startswith("answered") else None
            )
            batch.append(
                {
                    "contact_id": rng.randint(first, last),
                    "started_at": invite,
                    "invite_at": invite,
                    "answered_at": answered,
                    "flow_started_at": answered + timedelta(seconds=rng.uniform(0.2, 2.5))
                    if answered
                    else None,
                    "ended_at": invite + timedelta(seconds=60) if rng.random() > 0.001 else None,
                    "result": result,
                    "flow_outcome": rng.choice(OUTCOMES) if result == "answered_human" else None,
                    "worker": "bench",
                }
            )
            if len(batch) == CHUNK:
                conn.execute(insert(Attempt), batch)
                batch = []
        if batch:
            conn.execute(insert(Attempt), batch)


def streamed_rates(
    engine: Engine, now: datetime, hours: int
) -> tuple[Rates, Rates, list[tuple[datetime, Rates]]]:
    """The rates as ``campaign status`` computed them before: every attempt read into Python."""
    with Session(engine) as session:
        camp = session.scalars(select(Campaign).where(Campaign.name == "big")).one()
        successes = success_outcomes(camp.kind)
        of_campaign = Contact.campaign_id == camp.id
        succeeded = frozenset(
            session.scalars(select(Contact.id).where(of_campaign, Contact.outcome.in_(successes)))
        )
        total, recent = Tally(successes, succeeded), Tally(successes, succeeded)
        buckets: dict[datetime, Tally] = {}
        first_hour = hour_of(now) - timedelta(hours=hours - 1)
        query = (
            select(*FACT_COLUMNS)
            .join(Contact, Contact.id == Attempt.contact_id)
            .where(of_campaign)
            .execution_options(yield_per=10_000)
        )
        for row in session.execute(query):
            attempt = AttemptFacts(*row)
            total.add(attempt)
            if attempt.invite_at is None or not attempt.counted:
                continue
            if attempt.invite_at >= now - OFCOM_WINDOW:
                recent.add(attempt)
            if hour_of(attempt.invite_at) >= first_hour:
                buckets.setdefault(hour_of(attempt.invite_at), Tally(successes)).add(attempt)
    return total.rates(), recent.rates(), [(h, t.rates()) for h, t in sorted(buckets.items())]


def sql_rates(engine: Engine, now: datetime, hours: int) -> tuple[Rates, Rates, list[tuple[datetime, Rates]]]:
    """The same figures as :func:`streamed_rates`, counted by the database (``dialer.rates_sql``)."""
    with Session(engine) as session:
        camp = session.scalars(select(Campaign).where(Campaign.name == "big")).one()
        successes = success_outcomes(camp.kind)
        total, recent, _ = campaign_rates(session, camp.id, successes, now - OFCOM_WINDOW)
        first_hour = hour_of(now) - timedelta(hours=hours - 1)
        return total, recent, hourly_rates(session, camp.id, successes, first_hour)


def timed(label: str, runs: int, work: Callable[[], Any]) -> Any:
    took, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = work()
        took.append(time.perf_counter() - started)
    print(f"{label}: median {statistics.median(took):.3f} s, best {min(took):.3f} s ({runs} runs)")
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--attempts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--postgres", action="store_true", help="PostgreSQL (a fresh schema) instead of SQLite"
    )
    args = parser.parse_args()
    print(f"load average before: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    with database(args.postgres) as url, tempfile.TemporaryDirectory(prefix="bench-wallboard-data-") as data:
        settings = load_settings(env={}, overrides={"data_dir": data, "database.url": url})
        context = open_context(settings)
        context.users = UserStore(
            context.engine, PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
        )
        context.refresh_s = 0.0  # every request reads the board afresh
        engine = context.engine
        started = time.perf_counter()
        build(engine, args.contacts, args.attempts, random.Random(7))
        print(
            f"{engine.dialect.name}: built {args.contacts} contacts + {args.attempts} attempts in "
            f"{time.perf_counter() - started:.1f} s"
        )
        before = timed(
            "status rates streamed into Python (before)", args.runs, lambda: streamed_rates(engine, NOW, 12)
        )
        timed("the same rates counted in SQL (after)", args.runs, lambda: sql_rates(engine, NOW, 12))
        status = timed(
            "campaign_status, rates in SQL (after)",
            args.runs,
            lambda: campaign_status(engine, "big", NOW, hours=12),
        )
        started = time.perf_counter()
        with Session(engine) as session, session.begin():
            rebuild(session)  # what the schema upgrade does with attempts already stored
        print(f"counters filled from the attempts in {time.perf_counter() - started:.1f} s")
        if engine.dialect.name == "postgresql":
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.execute(text("VACUUM ANALYZE"))  # what autovacuum does after a bulk load
        counted = timed(
            "campaign_status, rates from the counters (the wallboard's)",
            args.runs,
            lambda: campaign_status(engine, "big", NOW, hours=12, counters=True),
        )
        same = before == (status.rates, status.rates_24h, status.hourly)
        same = same and before == (counted.rates, counted.rates_24h, counted.hourly)
        print(f"same figures streamed, counted in SQL and from the counters: {same}")
        context.users.add("boss", "manager", "correct horse battery", NOW, frozenset())
        client = TestClient(create_app(context))
        token = client.get("/login").text.split('name="csrf" value="')[1].split('"')[0]
        client.post("/login", data={"name": "boss", "password": "correct horse battery", "csrf": token})
        for path in ("/campaigns/big", "/campaigns/big/board"):

            def page(path: str = path) -> Any:
                return client.get(path)

            response = timed(f"GET {path}", args.runs, page)
            assert response.status_code == 200, response.text[:300]
        engine.dispose()
        context.index_engine.dispose()
    print(f"load average after: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
