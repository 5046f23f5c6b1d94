"""``serve --workers N``: more simultaneous calls than one pjsua2 process can hold.

One pjsua2 Endpoint per process, and the PyPI wheel's endpoint holds ``sip.engine_call_limit``
(4) calls. The front process starts N worker ``serve`` processes on the next N ports and answers
every INVITE on the public port with ``302 Moved Temporarily`` to the least loaded worker that
has room (``486 Busy Here`` when none has), as a SIP redirect server does. It learns each
worker's load from the worker's own log lines (``call.offered`` / ``call.released``), and
counts a redirect as a reservation until the caller arrives (or 10 s pass). Workers share the
data dir: one catalog of recordings, one TTS cache. SIGTERM is passed on to every worker.

With ``--dial`` every worker also dials (outbound calls need a worker's endpoint too); the
trunk's ``dialer.max_concurrent_calls`` and ``dialer.calls_per_second`` are split between the
workers so that together they never exceed them, and the database's leases keep any contact
out of two calls at once.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.settings import Settings
from ivr.errors import SipError
from ivr.logs import log_event
from ivr.sip_agent import SipAgent
from ivr.sip_events import CallRefused, SipEvent

_log = logging.getLogger("ivr.front")
_RESERVATION_S = 10.0
_READY_TIMEOUT_S = 90.0
_RUN_IVR = Path(__file__).resolve().parent.parent / "run_ivr.py"


@dataclass(frozen=True)
class DialPassthrough:
    """``serve --dial`` options handed on to every worker process."""

    campaign: str | None
    loops: int


def trunk_shares(total_calls: int, calls_per_second: float, workers: int) -> list[tuple[int, float]]:
    """Each worker's (max concurrent calls, calls per second); a worker with 0 calls does not dial."""
    base, extra = divmod(total_calls, workers)
    return [(base + (1 if n < extra else 0), calls_per_second / workers) for n in range(workers)]


@dataclass
class _Worker:
    index: int
    port: int
    proc: subprocess.Popen[str]
    active: int = 0
    reserved: list[float] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def load(self, now: float) -> int:
        self.reserved = [t for t in self.reserved if now - t < _RESERVATION_S]
        return self.active + len(self.reserved)


class WorkerPool:
    """The worker processes and their loads; :meth:`choose` is the redirect policy."""

    def __init__(
        self,
        settings: Settings,
        count: int,
        flow: str,
        config_file: str | None = None,
        dial: DialPassthrough | None = None,
    ) -> None:
        self.settings = settings
        self.count = count
        self.flow = flow
        self.config_file = config_file
        self.dial = dial
        self.capacity = min(settings.sip.max_concurrent_calls, settings.sip.engine_call_limit)
        self.host = settings.sip.public_address or (
            "127.0.0.1" if settings.sip.bind_address in ("", "0.0.0.0") else settings.sip.bind_address
        )
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        sip = self.settings.sip
        span = max(sip.rtp_port_range // self.count, 20)
        d = self.settings.dialer
        shares = trunk_shares(d.max_concurrent_calls, d.calls_per_second, self.count)
        for index in range(self.count):
            port = sip.port + 1 + index
            env = {
                **os.environ,
                "IVR_SIP__RTP_PORT_START": str(sip.rtp_port_start + index * span),
                "IVR_SIP__RTP_PORT_RANGE": str(span),
                "PYTHONUNBUFFERED": "1",
            }
            extra = ["--config", self.config_file] if self.config_file else []
            calls, rate = shares[index]
            if self.dial is not None and calls > 0:
                env["IVR_DIALER__MAX_CONCURRENT_CALLS"] = str(calls)
                env["IVR_DIALER__CALLS_PER_SECOND"] = repr(rate)
                extra += ["--dial", "--dial-workers", str(self.dial.loops)]
                extra += ["--campaign", self.dial.campaign] if self.dial.campaign else []
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(_RUN_IVR),
                    "serve",
                    "--sip-port",
                    str(port),
                    "--bind",
                    sip.bind_address,
                    "--data-dir",
                    str(self.settings.data_path),
                    "--flow",
                    self.flow,
                    "--max-calls",
                    str(self.capacity),
                    *extra,
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
                env=env,
            )
            worker = _Worker(index, port, proc)
            self._workers.append(worker)
            threading.Thread(
                target=self._read, args=(worker,), name=f"worker-{index}-log", daemon=True
            ).start()
        deadline = time.monotonic() + _READY_TIMEOUT_S
        for worker in self._workers:
            if not worker.ready.wait(max(0.0, deadline - time.monotonic())):
                self.stop()
                raise SipError(
                    f"worker {worker.index} (port {worker.port}) did not become ready; see its log lines"
                )

    def _read(self, worker: _Worker) -> None:
        assert worker.proc.stdout is not None
        for line in worker.proc.stdout:
            sys.stderr.write(f"worker={worker.index} {line}")
            if "event=serve.ready" in line:
                worker.ready.set()
            elif "event=call.offered" in line:
                with self._lock:
                    if worker.reserved:
                        worker.reserved.pop(0)
                    worker.active += 1
            elif "event=call.released" in line:
                with self._lock:
                    worker.active = max(0, worker.active - 1)

    def choose(self) -> str | None:
        """The worker URI for the next caller, reserving its place; None when all are full."""
        now = time.monotonic()
        with self._lock:
            alive = [w for w in self._workers if w.proc.poll() is None and w.ready.is_set()]
            free = [w for w in alive if w.load(now) < self.capacity]
            if not free:
                return None
            worker = min(free, key=lambda w: (w.load(now), w.index))
            worker.reserved.append(now)
            return f"sip:ivr@{self.host}:{worker.port}"

    def stop(self, timeout: float = 20.0) -> list[int]:
        """SIGTERM every worker (each hangs up its calls politely); their exit codes."""
        for worker in self._workers:
            if worker.proc.poll() is None:
                worker.proc.send_signal(signal.SIGTERM)
        codes = []
        for worker in self._workers:
            try:
                codes.append(worker.proc.wait(timeout))
            except subprocess.TimeoutExpired:
                worker.proc.kill()
                codes.append(worker.proc.wait())
        return codes


async def run_front(
    settings: Settings, workers: int, config_file: str | None = None, dial: DialPassthrough | None = None
) -> int:
    """The front process: redirect callers to ``workers`` worker processes until SIGTERM."""
    pool = WorkerPool(settings, workers, str(settings.flow_path), config_file, dial)
    await asyncio.to_thread(pool.start)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()

    def on_event(event: SipEvent) -> None:
        if isinstance(event, CallRefused):
            log_event(
                "call.redirected" if event.status_code == 302 else "call.refused",
                logger=_log,
                sip_call_id=event.sip_call_id,
                status=event.status_code,
                reason=event.reason,
            )

    front_sip = dataclasses.replace(settings.sip, max_concurrent_calls=settings.sip.engine_call_limit)
    agent = SipAgent(front_sip, on_event, redirect=pool.choose)
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        agent.start(loop)
        log_event(
            "serve.ready",
            logger=_log,
            port=agent.bound_port,
            workers=workers,
            capacity=workers * pool.capacity,
            data_dir=str(settings.data_path),
        )
        await stop.wait()
    finally:
        await asyncio.to_thread(agent.stop)
        codes = await asyncio.to_thread(pool.stop)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    log_event("serve.stopped", logger=_log, workers=workers, worker_exit_codes=",".join(map(str, codes)))
    return 0 if all(code == 0 for code in codes) else 1
