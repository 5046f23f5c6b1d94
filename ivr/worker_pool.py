"""The worker processes of ``serve --workers N``: started, watched, restarted, routed to.

The front (:mod:`ivr.front`) starts N worker ``serve`` processes on the next N ports and asks
:meth:`WorkerPool.choose` where to redirect each caller: the least loaded worker that has
room. The pool learns each worker's load from the worker's own log lines (``call.offered`` /
``call.released``), and counts a redirect as a reservation until the caller arrives (or 10 s
pass). Workers share the data dir: one catalog of recordings, one TTS cache.

A thread per worker waits on its process, so a death (a crash, the OOM killer) is noticed at
once: the front stops redirecting to it, forgets its load, and starts it again on the same
port after a backoff (:class:`~ivr.restart_backoff.RestartBackoff`); the new worker seals the
recordings its predecessor left open before it listens, and gets callers again once ready.

On a drain the pool restarts nothing more and passes SIGUSR1 to every worker: each finishes
its live calls, then exits. On stop it passes SIGTERM: each hangs its calls up politely.

With ``--dial`` every worker also dials (outbound calls need a worker's endpoint too); the
trunk's ``dialer.max_concurrent_calls`` and ``dialer.calls_per_second`` are split between the
workers so that together they never exceed them, and the database's leases keep any contact
out of two calls at once.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from config.errors import SipError
from config.logs import log_event
from config.settings import Settings
from ivr.drain import DRAIN_SIGNAL
from ivr.restart_backoff import RestartBackoff

_log = logging.getLogger("ivr.front")
_RESERVATION_S = 10.0
_READY_TIMEOUT_S = 90.0
_READER_DRAIN_S = 2.0
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


def exit_signal(code: int) -> str:
    """The signal's name for a negative exit code (``-9`` -> ``SIGKILL``), else ``""``."""
    if code >= 0:
        return ""
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


@dataclass
class _Worker:
    index: int
    port: int
    proc: subprocess.Popen[str]
    reader: threading.Thread | None = None
    backoff: RestartBackoff = field(default_factory=RestartBackoff)
    restarts: int = 0
    active: int = 0
    reserved: list[float] = field(default_factory=list)
    ready: threading.Event = field(default_factory=threading.Event)

    def load(self, now: float) -> int:
        self.reserved = [t for t in self.reserved if now - t < _RESERVATION_S]
        return self.active + len(self.reserved)


class WorkerPool:
    """The worker processes, their loads and their supervision; :meth:`choose` is the redirect
    policy (it runs on the front's SIP thread, so it only reads state under a short lock)."""

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
        self._lock = threading.Lock()  # loads, readiness and which process is current
        self._spawn_lock = threading.Lock()  # no process is started once _halt is set
        self._halt = threading.Event()  # stopping or draining: exits are expected, no restarts

    # -- processes ---------------------------------------------------------------------
    def _command(self, index: int, port: int) -> tuple[list[str], dict[str, str]]:
        sip = self.settings.sip
        span = max(sip.rtp_port_range // self.count, 20)
        env = {
            **os.environ,
            "IVR_SIP__RTP_PORT_START": str(sip.rtp_port_start + index * span),
            "IVR_SIP__RTP_PORT_RANGE": str(span),
            "PYTHONUNBUFFERED": "1",
        }
        if self.settings.media.speech_service_dir:
            env["IVR_MEDIA__SPEECH_SERVICE_DIR"] = self.settings.media.speech_service_dir
        extra = ["--config", self.config_file] if self.config_file else []
        d = self.settings.dialer
        calls, rate = trunk_shares(d.max_concurrent_calls, d.calls_per_second, self.count)[index]
        if self.dial is not None and calls > 0:
            env["IVR_DIALER__MAX_CONCURRENT_CALLS"] = str(calls)
            env["IVR_DIALER__CALLS_PER_SECOND"] = repr(rate)
            # The trunk's lines are shared through the database: every worker sees the whole.
            env["IVR_DIALER__TRUNK_LINES"] = str(d.trunk_lines or d.max_concurrent_calls)
            if index:  # one process takes real-time intake; the others see its contacts by polling
                env["IVR_INTAKE__HTTP_PORT"] = "0"
                env["IVR_INTAKE__MQTT"] = "false"
            extra += ["--dial", "--dial-workers", str(self.dial.loops)]
            extra += ["--campaign", self.dial.campaign] if self.dial.campaign else []
        argv = [
            sys.executable,
            str(_RUN_IVR),
            "serve",
            "--workers",
            "1",
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
            "--drain-timeout",
            repr(sip.drain_timeout_s),
            *extra,
        ]
        return argv, env

    def _launch(self, index: int, port: int, worker: _Worker | None) -> _Worker:
        """Start worker ``index`` (again, when ``worker`` is given) and its log reader."""
        argv, env = self._command(index, port)
        proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            env=env,
        )
        restart = worker is not None
        with self._lock:
            if worker is None:
                worker = _Worker(index, port, proc)
            worker.proc = proc
        worker.reader = threading.Thread(
            target=self._read, args=(worker, proc), name=f"worker-{index}-log", daemon=True
        )
        worker.reader.start()
        log_event("worker.started", logger=_log, index=index, port=port, pid=proc.pid, restart=restart)
        return worker

    def start(self) -> None:
        """Start every worker and wait until each listens (raises SipError), then supervise them."""
        sip = self.settings.sip
        try:
            with self._spawn_lock:
                for index in range(self.count):
                    self._workers.append(self._launch(index, sip.port + 1 + index, None))
        except OSError as exc:
            self.stop()
            raise SipError(f"cannot start worker process {len(self._workers)}: {exc}") from exc
        deadline = time.monotonic() + _READY_TIMEOUT_S
        for worker in self._workers:
            if not self._await_ready(worker, worker.proc, deadline - time.monotonic()):
                self.stop()
                raise SipError(
                    f"worker {worker.index} (port {worker.port}) did not become ready; see its log lines"
                )
        for worker in self._workers:
            threading.Thread(
                target=self._supervise, args=(worker,), name=f"worker-{worker.index}-watch", daemon=True
            ).start()

    def _await_ready(self, worker: _Worker, proc: subprocess.Popen[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not worker.ready.wait(0.2):
            if proc.poll() is not None or time.monotonic() >= deadline:
                return False
        return True

    def _read(self, worker: _Worker, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(f"worker={worker.index} {line}")
            with self._lock:
                if worker.proc is not proc:
                    continue  # the last words of a dead predecessor count for nothing
                if "event=serve.ready" in line:
                    worker.ready.set()
                elif "event=call.offered" in line:
                    if worker.reserved:
                        worker.reserved.pop(0)
                    worker.active += 1
                elif "event=call.released" in line:
                    worker.active = max(0, worker.active - 1)

    # -- supervision (one thread per worker) ---------------------------------------------
    def _supervise(self, worker: _Worker) -> None:
        proc = worker.proc
        while True:
            code = proc.wait()
            if worker.reader is not None:
                worker.reader.join(_READER_DRAIN_S)  # its crash traceback reaches the log first
            with self._lock:
                worker.ready.clear()
                worker.active = 0
                worker.reserved.clear()
            fields = {"index": worker.index, "port": worker.port, "pid": proc.pid, "exit_code": code}
            if self._halt.is_set():
                log_event("worker.exited", logger=_log, **fields)
                return
            log_event("worker.died", logging.ERROR, _log, **fields, signal=exit_signal(code))
            died_at = time.monotonic()
            restarted = self._restart(worker)
            if restarted is None:
                return
            proc = restarted
            if self._await_ready(worker, proc, _READY_TIMEOUT_S):
                worker.restarts += 1
                log_event(
                    "worker.restarted",
                    logger=_log,
                    index=worker.index,
                    port=worker.port,
                    pid=proc.pid,
                    restarts=worker.restarts,
                    down_s=round(time.monotonic() - died_at, 1),
                )
            elif proc.poll() is None:
                log_event("worker.not_ready", logging.ERROR, _log, index=worker.index, pid=proc.pid)
                proc.kill()  # counts as another death: the backoff grows

    def _restart(self, worker: _Worker) -> subprocess.Popen[str] | None:
        """Wait out the backoff and start the worker again; None once the pool stops or drains."""
        while True:
            decision = worker.backoff.on_death(time.monotonic())
            if decision.capped:
                log_event(
                    "worker.crash_loop",
                    logging.ERROR,
                    _log,
                    index=worker.index,
                    port=worker.port,
                    restarts_last_minute=decision.recent_restarts,
                    next_start_in_s=round(decision.delay_s, 1),
                )
            if self._halt.wait(decision.delay_s):
                return None
            with self._spawn_lock:
                if self._halt.is_set():
                    return None
                try:
                    self._launch(worker.index, worker.port, worker)
                except OSError as exc:
                    log_event("worker.start_failed", logging.ERROR, _log, index=worker.index, error=str(exc))
                    continue
                finally:
                    worker.backoff.on_restart(time.monotonic())
                return worker.proc

    # -- routing -----------------------------------------------------------------------
    def choose(self) -> str | None:
        """The worker URI for the next caller, reserving its place; None when all are full."""
        now = time.monotonic()
        with self._lock:
            if self._halt.is_set():
                return None
            alive = [w for w in self._workers if w.ready.is_set() and w.proc.returncode is None]
            free = [w for w in alive if w.load(now) < self.capacity]
            if not free:
                return None
            worker = min(free, key=lambda w: (w.load(now), w.index))
            worker.reserved.append(now)
            return f"sip:ivr@{self.host}:{worker.port}"

    def live_calls(self) -> int:
        with self._lock:
            return sum(w.active for w in self._workers)

    # -- ending ------------------------------------------------------------------------
    def drain(self) -> None:
        """No more redirects or restarts; every listening worker drains (SIGUSR1), the rest stop."""
        with self._spawn_lock:
            self._halt.set()
        for worker in self._workers:
            if worker.proc.poll() is None:
                # A worker still starting has no calls, and may not handle SIGUSR1 yet.
                worker.proc.send_signal(DRAIN_SIGNAL if worker.ready.is_set() else signal.SIGTERM)

    def wait_exited(self, timeout: float | None) -> bool:
        """Wait until every worker process has exited; False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for worker in self._workers:
            try:
                worker.proc.wait(None if deadline is None else max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self, timeout: float = 20.0) -> list[int]:
        """SIGTERM every worker (each hangs up its calls politely); their exit codes."""
        with self._spawn_lock:
            self._halt.set()
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
