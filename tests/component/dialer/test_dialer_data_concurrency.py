"""Four workers racing for 10,000 contacts on PostgreSQL (and 2,000 on SQLite): every contact
is leased exactly once (FOR UPDATE SKIP LOCKED / BEGIN IMMEDIATE)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from dialer.models import Contact
from dialer.store import DialerStore, Lease
from tests.component.dialer.dialer_data_helpers import ALWAYS_OPEN, T0, add_contacts, make_campaign

WORKERS = 4


def race(engine: Engine, contacts: int, batch: int) -> tuple[list[list[Lease]], list[BaseException]]:
    cid = make_campaign(engine, calling_hours=ALWAYS_OPEN)
    add_contacts(engine, cid, contacts)
    store = DialerStore(engine, timedelta(minutes=5))
    taken: list[list[Lease]] = [[] for _ in range(WORKERS)]
    errors: list[BaseException] = []
    start = threading.Barrier(WORKERS)

    def work(n: int) -> None:
        try:
            start.wait()
            while leases := store.lease(f"worker-{n}", T0, limit=batch):
                taken[n].extend(leases)
                # A real worker dials between leases; without this pause one thread can win
                # SQLite's write lock back every time and the others never get to race.
                time.sleep(0.002)
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return taken, errors


@pytest.mark.parametrize("db_url", ["postgresql", "sqlite"], indirect=True)
def test_dialer_data_no_contact_leased_twice(engine: Engine, db_url: str) -> None:
    contacts = 10_000 if db_url.startswith("postgresql") else 2_000
    taken, errors = race(engine, contacts, batch=25)
    assert errors == []
    counts = Counter(lease.contact_id for leases in taken for lease in leases)
    assert len(counts) == contacts
    assert max(counts.values()) == 1
    assert sum(1 for leases in taken if leases) >= 2, "the workers did not actually race"
    with Session(engine) as session:
        owners = {i: owner for i, owner in session.execute(select(Contact.id, Contact.lease_owner))}
        assert session.scalar(select(func.count()).where(Contact.state != "leased")) == 0
    for n, leases in enumerate(taken):
        assert all(owners[lease.contact_id] == f"worker-{n}" for lease in leases)
