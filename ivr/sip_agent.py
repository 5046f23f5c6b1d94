"""The pjsua2 adapter: one Endpoint per process, living on its own thread.

pjsua2 rules this module enforces so nothing else has to know them:

* Every pjsua2 call happens on the agent thread. Other threads ask through :meth:`SipAgent.submit`,
  a queue the thread drains between ``libHandleEvents`` polls.
* Callbacks never block and never raise (:mod:`ivr.sip_call`): they translate into
  :mod:`ivr.sip_events` and hand them to the asyncio loop with ``call_soon_threadsafe``. Media
  frames go through a lock-free :class:`MediaBridge`.
* Python keeps a reference to every Call, Account and AudioMediaPort until pjsua2 is done with
  them, and releases a call inside its DISCONNECTED callback: a ``Call`` destroyed later still
  holds its slot number, and its destructor would hang up whichever new call reused the slot.
  Its media port is destroyed explicitly first (:func:`~ivr.bridge_port.release_bridge_port`).
* Every INVITE gets a final response at once: admission (:mod:`ivr.admission`) and the SDP
  check (:mod:`ivr.sdp_offer`) run before pjsua is asked to answer.

This module owns the thread, the Endpoint, its accounts and the command queue; the calls
themselves, from INVITE to DISCONNECTED, are :class:`~ivr.sip_calls.SipCalls`'.
"""

from __future__ import annotations

import gc
import logging
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import pjsua2 as pj

from config.errors import SipError
from config.logs import log_event
from config.settings import SipSettings
from ivr.node_health import HealthReport, NodeLoad
from ivr.pjsua2_build import installed_build
from ivr.sip_call import CallRecord, PjAccount, PjCall, pj_error
from ivr.sip_calls import SipCalls
from ivr.sip_endpoint import account_config, configure_endpoint
from ivr.sip_events import SipEvent

_log = logging.getLogger("ivr.sip")
_POLL_MS = 5


class SipAgent:
    """Answers and places G.711 calls; reports everything as :data:`SipEvent` to ``on_event``.

    ``on_event`` runs on the asyncio loop given to :meth:`start`, never on the pjsua2 thread.
    """

    def __init__(
        self,
        settings: SipSettings,
        on_event: Callable[[SipEvent], None],
        redirect: Callable[[], str | None] | None = None,
        native_bridge: bool = True,
    ) -> None:
        self.settings = settings
        self._on_event = on_event
        self._loop: Any = None
        self._thread: threading.Thread | None = None
        self._commands: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._stopping = threading.Event()
        self._draining = threading.Event()
        self._start_error: str | None = None
        # ``redirect``: a front agent's pick for a 302 to every INVITE (see ivr.sip_calls)
        self._calls = SipCalls(self, settings, redirect, native_bridge)
        self._ep: Any = None
        self._account: PjAccount | None = None
        self._trunk_account: PjAccount | None = None
        self._health = HealthReport()
        self.bound_port = settings.port
        self.build = installed_build()
        # What one process takes is measured (docs/benchmarks.md), and never more than the
        # pjsua2 build holds; pjsua gets headroom above it so a freed slot is not reused at once.
        self.capacity = min(settings.max_concurrent_calls, settings.engine_call_limit, self.build.max_calls)

    # -- lifecycle --------------------------------------------------------------------
    def start(self, loop: Any, timeout: float = 15.0) -> None:
        """Start the agent thread and wait until SIP transports listen (raises SipError)."""
        # sip.gil_switch_interval_ms (0.5): with the Python BridgePort pjmedia's clock thread
        # needs the GIL twice per call every 20 ms, and CPython's default 5 ms interval let each
        # hand-over cost up to 5 ms while the event loop was busy (docs/benchmarks.md, capacity).
        sys.setswitchinterval(self.settings.gil_switch_interval_ms / 1000)
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="pjsua2", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise SipError(f"SIP user agent did not start within {timeout:.0f} s")
        if self._start_error is not None:
            raise SipError(
                f"SIP user agent failed to start on {self.settings.bind_address}:{self.settings.port}: "
                f"{self._start_error}"
            )

    def stop(self, timeout: float = 10.0) -> None:
        """Hang up every call, close transports and destroy the endpoint."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def drain(self) -> None:
        """Take no new calls (503 with Retry-After, and 503 to OPTIONS probes); calls in
        progress go on. Any thread."""
        if not self._draining.is_set():
            self._draining.set()
            self.submit(lambda: self._set_online(False))
            log_event("sip.draining", logger=_log, live_calls=self.active_calls)

    @property
    def draining(self) -> bool:
        return self._draining.is_set()

    @property
    def closing(self) -> bool:
        """Draining or stopping: admission refuses new INVITEs."""
        return self._draining.is_set() or self._stopping.is_set()

    @property
    def active_calls(self) -> int:
        return self._calls.active

    @property
    def pending_invites(self) -> int:
        return self._calls.pending_invites

    # -- commands (any thread) ----------------------------------------------------------
    def submit(self, command: Callable[[], None]) -> None:
        self._commands.put(command)

    def hangup(self, call_key: int, status_code: int = 0) -> None:
        self.submit(lambda: self._calls.hangup(call_key, status_code))

    def place_call(self, uri: str, ring_timeout_s: float, use_trunk_credentials: bool = True) -> int:
        """Start an outbound call; returns its key at once (events follow)."""
        key = self._calls.next_key()

        def run() -> None:
            trunk = self._trunk_account if use_trunk_credentials else None
            self._calls.place(key, uri, ring_timeout_s, trunk or self._account)

        self.submit(run)
        return key

    def set_trunk_credentials(self, id_uri: str, username: str, password: str) -> None:
        """Credentials answered to 401/407 challenges on placed calls."""

        def run() -> None:
            self._trunk_account = self._create_account(id_uri, False, username, password)

        self.submit(run)

    # -- the agent thread ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._init_endpoint()
        except Exception as exc:  # pjsua2 raises pj.Error, which carries the reason text
            self._start_error = pj_error(exc)
            self._destroy()
            self._ready.set()
            return
        self._ready.set()
        try:
            while not self._stopping.is_set():
                self._ep.libHandleEvents(_POLL_MS)
                self._run_commands()
                self._calls.run_timers()
                self._report_health()
            self._shutdown_calls()
        except Exception as exc:  # the loop itself must not die silently with calls in it
            log_event("sip.agent_failed", logging.CRITICAL, _log, error=pj_error(exc))
            raise
        finally:
            self._destroy()

    def _init_endpoint(self) -> None:
        s = self.settings
        ep = pj.Endpoint()
        ep.libCreate()
        self._ep = ep
        headroom = min(self.build.max_calls, 2 * self.capacity + s.max_pending_invites + 8)
        port = configure_endpoint(ep, s, max_calls=headroom)
        self.bound_port = port
        host = s.public_address or ("127.0.0.1" if s.bind_address in ("0.0.0.0", "") else s.bind_address)
        self._account = self._create_account(f"sip:ivr@{host}:{port}", default=True)
        self._set_online(not self._draining.is_set())
        log_event(
            "sip.listening",
            logger=_log,
            address=s.bind_address,
            port=port,
            transports=",".join(s.transports),
            codecs=",".join(s.codecs),
            capacity=self.capacity,
            pjsua2=self.build.name,
            open_to="any source" if not s.allowed_networks else ",".join(s.allowed_networks),
        )

    def _create_account(
        self, id_uri: str, default: bool, username: str = "", password: str = ""
    ) -> PjAccount:
        account = PjAccount(self)
        account.create(account_config(self.settings, id_uri, username, password), default)
        return account

    def _set_online(self, online: bool) -> None:
        # With the vendored build's patch, OPTIONS follows this: 200 online, 503 offline, so a
        # load balancer's probe sees a draining node leave.
        if self._account is not None:
            status = pj.PresenceStatus()
            status.status = pj.PJSUA_BUDDY_STATUS_ONLINE if online else pj.PJSUA_BUDDY_STATUS_OFFLINE
            self._account.setOnlineStatus(status)

    def _report_health(self) -> None:
        # A balancer's OPTIONS probe sees 503 while this node would refuse an INVITE (ivr.node_health).
        calls, most_pending = self._calls, self.settings.max_pending_invites
        load = NodeLoad(calls.active, calls.pending_invites, self.capacity, most_pending, self.closing)
        online = self._health.update(load)
        if online is not None:
            self._set_online(online)

    def _run_commands(self) -> None:
        while True:
            try:
                command = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                command()
            except Exception as exc:
                log_event("sip.command_failed", logging.WARNING, _log, error=pj_error(exc))

    def _shutdown_calls(self) -> None:
        self._calls.hang_up_all()
        deadline = time.monotonic() + 3.0
        while self._calls.records and time.monotonic() < deadline:
            self._ep.libHandleEvents(20)

    def _destroy(self) -> None:
        # Every Call, Account and AudioMediaPort must be gone before libDestroy: their destructors
        # call into pjsua. Records and calls point at each other, so break those cycles and
        # collect now rather than leave them to a later (post-destroy) garbage collection.
        self._calls.release_all()
        self._account = None
        self._trunk_account = None
        gc.collect()
        if self._ep is not None:
            try:
                self._ep.libDestroy()
            except Exception as exc:  # pragma: no cover - best effort at exit
                log_event("sip.destroy_failed", logging.WARNING, _log, error=pj_error(exc))
            self._ep = None

    # -- pjsua2 callbacks (agent thread) -------------------------------------------------
    def emit(self, event: SipEvent) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._on_event, event)

    def fail_call(self, rec: CallRecord) -> None:
        """A callback or timer of this call failed: end the call, keep the process."""
        self._calls.fail_call(rec)

    def on_incoming(self, account: PjAccount, prm: Any) -> None:
        self._calls.on_incoming(account, prm)

    def on_call_state(self, call: PjCall) -> None:
        self._calls.on_call_state(call)

    def on_media_state(self, call: PjCall) -> None:
        self._calls.on_media_state(call)
