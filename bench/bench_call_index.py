"""Search speed of the call index with 100,000 indexed calls, on SQLite and PostgreSQL.

Indexes synthetic calls (90 days, 20,000 distinct numbers, 3 flows, 2 campaigns, outcomes,
caller and bot transcripts drawn from a seeded vocabulary in which about 2 % of callers say
"cancel") through the same upsert the recorder uses, then times the searches an auditor runs:
by number, by a word the caller said, by a phrase, by date and outcome, and combinations.
Each search runs 5 times; the table shows the median and the slowest (target: well under 1 s).

    .venv/bin/python bench/bench_call_index.py [--calls 100000] [--backend sqlite|postgresql|both]
        [--pg-url postgresql+psycopg://postgres@127.0.0.1:5432/test]

PostgreSQL gets a scratch schema that is dropped afterwards.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, text

from recordings.call_index import IndexRow, count_calls, index_rows
from recordings.call_search import SearchFilters, search
from recordings.database import forget_engines, open_index_database
from recordings.numbers import NumberKey

START = datetime(2024, 3, 1, tzinfo=UTC)
FLOWS = ("hotline", "callback", "survey")
OUTCOMES = ("understood", "balance_told", "transferred", "callback", "cancelled", "no_input")
CALLER_WORDS = [
    "balance",
    "account",
    "card",
    "payment",
    "yes",
    "no",
    "please",
    "thank",
    "you",
    "agent",
    "help",
    "my",
    "the",
    "a",
    "to",
    "check",
    "transfer",
    "money",
    "statement",
    "address",
    "change",
    "open",
    "close",
    "branch",
    "hours",
    "loan",
    "rate",
    "interest",
    "savings",
    "pin",
    "lost",
    "stolen",
    "block",
    "travel",
    "abroad",
    "limit",
    "fee",
    "refund",
    "dispute",
    "charge",
    "order",
    "deliver",
    "today",
    "tomorrow",
    "week",
]
BOT_PROMPTS = (
    "Welcome to the bank, how can I help you today?",
    "Please say or key in your account number.",
    "Your balance is being read to you now.",
    "I will transfer you to an agent, please hold.",
    "Is there anything else I can help you with?",
    "Sorry, I did not catch that. Could you repeat?",
)
KEY = NumberKey(b"bench-call-index-number-key-0000", Path("bench.key"))


def synthetic_rows(count: int, seed: int = 11) -> tuple[list[IndexRow], str]:
    """``count`` calls and a number that has several of them."""
    rng = random.Random(seed)
    numbers = [f"+1555{n:07d}" for n in rng.sample(range(10_000_000), 20_000)]
    rows = []
    used: Counter[str] = Counter()
    now = datetime.now(UTC)
    for i in range(count):
        number = numbers[rng.randrange(len(numbers))]
        used[number] += 1
        inbound = rng.random() < 0.7
        started = START + timedelta(seconds=rng.randrange(90 * 86_400))
        duration = rng.uniform(5, 400)
        words = rng.choices(CALLER_WORDS, k=rng.randint(4, 30))
        if rng.random() < 0.02:
            words[rng.randrange(len(words))] = rng.choice(("cancel my subscription", "cancel", "cancelled"))
        caller_text = " ".join(words)
        bot_text = "\n".join(rng.sample(BOT_PROMPTS, rng.randint(2, 5)))
        campaign = rng.choice(("renewals", "collections")) if not inbound else ""
        digest = KEY.digest(number)
        rows.append(
            IndexRow(
                {
                    "call_id": f"bench-{i:07d}",
                    "direction": "inbound" if inbound else "outbound",
                    "status": "complete",
                    "started_at": started,
                    "ended_at": started + timedelta(seconds=duration),
                    "duration_s": duration,
                    "flow": rng.choice(FLOWS),
                    "flow_version": "1",
                    "outcome": rng.choice(OUTCOMES),
                    "campaign": campaign,
                    "contact_id": str(i) if campaign else "",
                    "from_hash": digest if inbound else KEY.digest("sip:100@pbx"),
                    "to_hash": KEY.digest("sip:100@pbx") if inbound else digest,
                    "number_key_id": KEY.key_id,
                    "from_masked": "+*********" + number[-2:] if inbound else "sip:***@pbx",
                    "to_masked": "sip:***@pbx" if inbound else "+*********" + number[-2:],
                    "turns": 6,
                    "sidecar_path": f"{started:%Y/%m/%d}/bench-{i:07d}.json",
                    "sidecar_sha256": "0" * 64,
                    "indexed_at": now,
                },
                {"caller": caller_text, "bot": bot_text, "agent": ""},
            )
        )
    return rows, used.most_common(1)[0][0]


@contextmanager
def database(backend: str, pg_url: str) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="bench-call-index-") as folder:
            yield f"sqlite:///{Path(folder) / 'ivr.sqlite3'}"
            forget_engines()
        return
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    schema = f"bench_call_index_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{pg_url}?options=-csearch_path%3D{schema}"
    finally:
        forget_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def timed(run: Callable[[], int], repeat: int = 5) -> tuple[float, float, int]:
    times, found = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        found = run()
        times.append(time.perf_counter() - started)
    return statistics.median(times), max(times), found


def bench(backend: str, count: int, pg_url: str) -> list[tuple[str, str, str, str]]:
    rows, number = synthetic_rows(count)
    out = []
    with database(backend, pg_url) as url:
        engine = open_index_database(url)
        started = time.perf_counter()
        index_rows(engine, rows)
        took = time.perf_counter() - started
        if engine.dialect.name == "postgresql":
            with engine.connect() as conn:
                conn.execute(text("ANALYZE"))
                conn.commit()
        assert count_calls(engine) == count
        out.append((backend, f"index {count:,} calls", f"{took:.1f} s", f"{count / took:,.0f} calls/s"))
        digests = KEY.search_digests(number, "US")
        day = START + timedelta(days=30)
        searches: list[tuple[str, SearchFilters]] = [
            ("--number (one caller's calls)", SearchFilters(number_digests=digests)),
            ("--says cancel --speaker caller", SearchFilters(says="cancel", speaker="caller")),
            ('--says "cancel my subscription"', SearchFilters(says="cancel my subscription")),
            ("--says balance (any speaker, common)", SearchFilters(says="balance")),
            (
                "--from/--to one day --outcome cancelled",
                SearchFilters(started_from=day, started_before=day + timedelta(days=1), outcome="cancelled"),
            ),
            (
                "--from/--to 30 days --flow survey",
                SearchFilters(started_from=day, started_before=day + timedelta(days=30), flow="survey"),
            ),
            ("--campaign renewals --says cancel", SearchFilters(campaign="renewals", says="cancel")),
            ("--number --says please", SearchFilters(number_digests=digests, says="please")),
        ]
        for label, filters in searches:

            def run(f: SearchFilters = filters) -> int:
                return len(search(engine, f, limit=50).calls)

            median, worst, found = timed(run)
            out.append((backend, label, f"{median * 1000:.1f} ms (max {worst * 1000:.1f})", f"{found} shown"))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--calls", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    table = [("BACKEND", "WHAT", "TIME", "RESULT")]
    for backend in backends:
        table.extend(bench(backend, args.calls, args.pg_url))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    for row in table:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


if __name__ == "__main__":
    main()
