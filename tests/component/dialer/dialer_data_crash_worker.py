"""A dialer worker process for the crash test: real clock, real database, a placer that
"talks" for a fixed time and appends ``start``/``end`` lines to a log (O_APPEND, one write
per line, so lines survive SIGKILL). Exits when the campaign is finished."""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from datetime import timedelta

from dialer.call_result import CallResult
from dialer.db import make_engine
from dialer.pacing import Pacer
from dialer.store import DialerStore
from dialer.worker import CallReport, CallRequest, DialerWorker, SystemClock, WorkerConfig


class LoggingPlacer:
    def __init__(self, log: str, owner: str, seconds: float) -> None:
        self.fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.owner = owner
        self.seconds = seconds
        self.clock = SystemClock()
        self.busy_once: set[int] = set()

    def _log(self, what: str, contact: int) -> None:
        os.write(self.fd, f"{what} {contact} {time.time():.6f} {self.owner}\n".encode())

    async def place(self, request: CallRequest) -> CallReport:
        started = self.clock.now()
        self._log("start", request.contact_id)
        await asyncio.sleep(self.seconds)
        self._log("end", request.contact_id)
        # Every third contact is busy on its first try here, so retries happen too.
        if request.contact_id % 3 == 0 and request.contact_id not in self.busy_once:
            self.busy_once.add(request.contact_id)
            return CallReport(CallResult.BUSY, started, self.clock.now(), sip_status=486)
        return CallReport(CallResult.ANSWERED_HUMAN, started, self.clock.now(), 200, "confirmed")


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("url")
    parser.add_argument("log")
    parser.add_argument("owner")
    parser.add_argument("--lease", type=float, default=2.0)
    parser.add_argument("--call", type=float, default=0.3)
    args = parser.parse_args()
    engine = make_engine(args.url)
    store = DialerStore(engine, timedelta(seconds=args.lease))
    placer = LoggingPlacer(args.log, args.owner, args.call)
    config = WorkerConfig(owner=args.owner, poll_interval_s=0.05, housekeeping_interval_s=0.25)
    worker = DialerWorker(store, Pacer(4, 50.0, burst=4), placer, SystemClock(), config)
    stop = asyncio.Event()
    runner = asyncio.create_task(worker.run(stop))
    os.write(placer.fd, f"ready 0 {time.time():.6f} {args.owner}\n".encode())
    while True:  # the database is the only place "finished" shows; poll it
        if store.campaign("march").state == "finished":
            break
        await asyncio.sleep(0.1)
    stop.set()
    await runner
    engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
