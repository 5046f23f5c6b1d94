"""A dialer process for the trunk-line tests: real clock, real database, trunk lines shared
through it, and a placer that "talks" for a fixed time and appends ``start``/``end`` lines
(with the wall-clock time) to a shared log, one O_APPEND write per line. Exits when the
campaign is finished."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import timedelta
from pathlib import Path

from dialer.call_result import CallResult
from dialer.db import make_engine
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.trunk_lines import TrunkLines
from dialer.worker import CallReport, CallRequest, DialerWorker, SystemClock, WorkerConfig


class IntervalPlacer:
    checks_before_invite = True

    def __init__(self, log: str, owner: str, seconds: float) -> None:
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.owner = owner
        self.seconds = seconds
        self.clock = SystemClock()

    def write(self, what: str, contact: int) -> None:
        os.write(self.fd, f"{what} {contact} {time.time():.6f} {self.owner}\n".encode())

    async def place(self, request: CallRequest) -> CallReport:
        started = self.clock.now()
        assert request.ready_to_dial is not None
        if not await request.ready_to_dial():
            return CallReport(CallResult.CANCELLED, started, self.clock.now(), detail="not dialled")
        invite_at = self.clock.now()
        self.write("start", request.contact_id)
        await asyncio.sleep(self.seconds)
        self.write("end", request.contact_id)
        return CallReport(
            CallResult.ANSWERED_HUMAN, started, self.clock.now(), 200, "confirmed", invite_at=invite_at
        )


def wait_for_peers(log: str, count: int) -> None:
    """A loaded machine starts the processes seconds apart; the first alone could call everyone."""
    while sum(line.startswith("ready ") for line in Path(log).read_text().splitlines()) < count:
        time.sleep(0.02)


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("log")
    parser.add_argument("owner")
    parser.add_argument("--lines", type=int, default=2)
    parser.add_argument("--hold", type=float, default=3.0)
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--call", type=float, default=0.4)
    parser.add_argument("--local", type=int, default=4, help="this process's own concurrency cap")
    parser.add_argument(
        "--together", type=int, default=1, help="start dialling once this many processes are ready"
    )
    args = parser.parse_args()
    engine = make_engine(args.url)
    store = DialerStore(engine, timedelta(seconds=args.lease))
    lines = TrunkLines(engine, "trunk.example:5060", args.lines, hold=timedelta(seconds=args.hold))
    placer = IntervalPlacer(args.log, args.owner, args.call)
    config = WorkerConfig(owner=args.owner, poll_interval_s=0.05, housekeeping_interval_s=0.25)
    pacer = Pacer(args.local, 50.0, burst=args.local)
    worker = DialerWorker(store, pacer, placer, SystemClock(), config, lines=lines)
    stop = asyncio.Event()
    os.write(placer.fd, f"ready 0 {time.time():.6f} {args.owner}\n".encode())
    await asyncio.to_thread(wait_for_peers, args.log, args.together)
    runner = asyncio.create_task(worker.run(stop))
    while True:  # the database is the only place "finished" shows; poll it
        if store.campaign("march").state == "finished":
            break
        await asyncio.sleep(0.1)
    stop.set()
    await runner
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
