"""How a running ``serve`` is told to ring a supervisor into a call: a local control socket.

Each serve process (each worker of ``serve --workers N``) listens on a Unix socket
``<data dir>/control/serve-<pid>.sock`` (directory 0700, socket 0600) and only answers peers
running as its own user (or root), checked with ``SO_PEERCRED``: the operating system
authenticates the account, nothing travels over the network, and no password is stored. The
person is then checked by name: ``user`` must hold the supervisor role (the console's users
store decides when it knows the user, else the roster ``<data dir>/supervisors.yaml``, 0600,
refused if others may write it) and the phone to ring must be registered to them in the
roster (:mod:`supervision.supervisor_access`). Every request, refused or not, and every step of
a supervision (start, mode changes, end) is appended to the recordings' access log as a
``supervise`` row, the request's before anything rings (no supervision without a trace).

One JSON object per line each way; the client asks each live socket in
turn (:mod:`ivr.supervisor_client`), and the process holding the call answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import struct
from collections.abc import Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Engine

from config.logs import log_event, mask_number
from config.settings import Settings
from console.users import UserStore
from dialer.db import open_database
from ivr.call_hub import CallHub
from ivr.call_reports import LIVE_SHORT_IDS
from ivr.call_session import CallSession
from ivr.supervisor_client import SupervisionError, control_dir, load_roster, roster_path, socket_address
from ivr.supervisor_leg import Supervision, SupervisorDialer
from recordings.access_log import Accessor, check_actor, record_access
from recordings.database import open_index_database
from recordings.errors import RecordingError
from supervision.feature_code import check_prefix, join_target
from supervision.supervisor_access import authorize
from supervision.supervisor_modes import ModeChange, check_mode

_log = logging.getLogger("ivr.supervision")
_MAX_REQUEST = 4096


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a Unix socket (Linux ``SO_PEERCRED``)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", raw)
    return pid, uid


class SupervisorControl:
    """The serve side of the control socket; see the module docstring."""

    def __init__(self, settings: Settings, hub: CallHub) -> None:
        self.settings = settings
        self.hub = hub
        self.path = control_dir(settings.data_path) / f"serve-{os.getpid()}.sock"
        self._server: asyncio.Server | None = None
        self._engine: Engine | None = None
        self._users: UserStore | None = None

    async def start(self) -> None:
        check_prefix(self.settings.supervision.feature_code)  # a bad prefix stops serve at once
        directory = self.path.parent
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        directory.chmod(0o700)
        self.path.unlink(missing_ok=True)
        old_mask = os.umask(0o177)  # the socket is created 0600, never briefly open to others
        try:
            with socket_address(self.path) as address:  # a deep data dir still fits sun_path
                self._server = await asyncio.start_unix_server(self._client, path=address)
        finally:
            os.umask(old_mask)
        log_event("serve.control_listening", logger=_log, socket=str(self.path))

    async def aclose(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        self.path.unlink(missing_ok=True)
        if self._engine is not None:
            self._engine.dispose()
        if self._users is not None:
            self._users.engine.dispose()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            sock = writer.get_extra_info("socket")
            pid, uid = peer_credentials(sock)
            if uid not in (os.geteuid(), 0):
                reply: dict[str, Any] = {"ok": False, "error": f"uid {uid} may not control this engine"}
            else:
                line = await asyncio.wait_for(reader.readline(), 5.0)
                reply = await self.handle(_parse_request(line), pid, uid)
        except SupervisionError as exc:
            reply = {"ok": False, "error": str(exc)}
        except (TimeoutError, OSError, ValueError) as exc:
            reply = {"ok": False, "error": f"bad request: {exc}"}
        with contextlib.suppress(OSError):
            writer.write(json.dumps(reply).encode() + b"\n")
            await writer.drain()
            writer.close()

    async def handle(self, request: Mapping[str, Any], pid: int, uid: int) -> dict[str, Any]:
        """Check, audit, then ring; the reply says what happened (``found`` False: not here)."""
        call_id = _field(request, "call_id")
        session = next(
            (s for s in self.hub.sessions.values() if isinstance(s, CallSession) and s.call_id == call_id),
            None,
        )
        if session is None:
            return {
                "ok": False,
                "found": False,
                "error": f"no live call {call_id} in serve pid {os.getpid()}",
            }
        try:
            mode = check_mode(_field(request, "mode"))
            user = check_actor(_field(request, "user"))
        except (ValueError, RecordingError) as exc:
            raise SupervisionError(str(exc)) from exc
        uri = _field(request, "uri")
        who = Accessor(
            actor=user,
            os_user=f"{str(request.get('os_user', ''))[:150]} (uid {uid})",
            host=str(request.get("host", ""))[:255],
            tty=str(request.get("tty", ""))[:200],
            remote=str(request.get("remote", ""))[:200],
            pid=pid,
        )
        roster = await asyncio.to_thread(load_roster, roster_path(self.settings.data_path))
        decision = authorize(roster, user, uri, await asyncio.to_thread(self._console_role, user))
        detail = {
            "step": "requested",
            "mode": mode,
            "supervisor": mask_number(uri),
            "decision": decision.reason,
        }
        await asyncio.to_thread(self._audit, who, call_id, {**detail, "allowed": decision.allowed})
        if not decision.allowed:
            log_event("call.supervision_refused", logging.WARNING, _log, call_id=call_id, user=user)
            return {"ok": False, "found": True, "error": f"refused: {decision.reason}"}
        problem = session.supervise(user, uri, mode, self.hub, partial(self._on_change, who))
        if problem is not None:
            return {"ok": False, "found": True, "error": problem}
        return {"ok": True, "found": True, "call_id": call_id, "mode": mode, "ringing": mask_number(uri)}

    async def join_dialled(
        self, who: Accessor, uri: str, short_id: str, dialer: SupervisorDialer
    ) -> str | None:
        """A dial-in whose PIN was right (:mod:`ivr.supervisor_dialin`): find the call by its short
        id, check the role and the phone as for any request, audit, join in listen mode.

        Returns why not, or None once joined. The row is written before anything is joined.
        """
        live = {short: reports.call_id for short, reports in LIVE_SHORT_IDS.items()}
        target = join_target(short_id, live)
        session = next(
            (s for s in self.hub.sessions.values() if isinstance(s, CallSession) and s.call_id == target),
            None,
        )
        if session is None:
            reason = f"no live call with short id {short_id}"
            await self.audit_dialin(who, "", {"step": "requested", "allowed": False, "decision": reason})
            return reason
        roster = await asyncio.to_thread(load_roster, roster_path(self.settings.data_path))
        decision = authorize(roster, who.actor, uri, await asyncio.to_thread(self._console_role, who.actor))
        detail = {
            "step": "requested",
            "mode": "listen",
            "via": "feature_code",
            "short_id": short_id,
            "supervisor": mask_number(uri),
            "decision": decision.reason,
            "allowed": decision.allowed,
        }
        await asyncio.to_thread(self._audit, who, session.call_id, detail)
        if not decision.allowed:
            log_event(
                "call.supervision_refused", logging.WARNING, _log, call_id=session.call_id, user=who.actor
            )
            return f"refused: {decision.reason}"
        return session.supervise(who.actor, uri, "listen", dialer, partial(self._on_change, who))

    async def audit_dialin(self, who: Accessor, call_id: str, detail: Mapping[str, Any]) -> None:
        """A dial-in refused before it named a live call (unknown phone, wrong PIN, no such id)."""
        await asyncio.to_thread(self._audit, who, call_id, {"via": "feature_code", **detail})

    def _console_role(self, user: str) -> bool | None:
        """What the console's users store says of ``user`` (None: not a console user)."""
        if self._users is None:
            engine = open_database(self.settings.database_url, self.settings.database, "supervise")
            self._users = UserStore(engine)
        found = self._users.get(user)
        return None if found is None else (not found.disabled and found.can("supervise"))

    def _on_change(self, who: Accessor, supervision: Supervision, change: ModeChange, at: datetime) -> None:
        """A step of a supervision: its audit row, written off the loop."""
        detail = {
            "step": change.kind,
            "mode": change.mode,
            "previous": change.previous,
            "reason": change.reason,
            "supervisor": mask_number(supervision.uri),
        }
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(None, partial(self._audit, who, supervision.call_id, detail, at))
        future.add_done_callback(_log_audit_failure)

    def _audit(
        self, who: Accessor, call_id: str, detail: Mapping[str, Any], at: datetime | None = None
    ) -> None:
        if self._engine is None:
            self._engine = open_index_database(self.settings.database_url, self.settings.database)
        try:
            ids = [call_id] if call_id else []
            record_access(self._engine, who, "supervise", ids, detail=detail, now=at)
        except RecordingError as exc:
            raise SupervisionError(str(exc)) from exc


def _log_audit_failure(future: asyncio.Future[None]) -> None:
    exc = future.exception()
    if exc is not None:
        log_event("call.supervision_audit_failed", logging.ERROR, _log, error=str(exc))


def _parse_request(line: bytes) -> dict[str, Any]:
    if len(line) > _MAX_REQUEST or not line.endswith(b"\n"):
        raise ValueError(f"one JSON object on one line of at most {_MAX_REQUEST} bytes")
    request = json.loads(line)
    if not isinstance(request, dict) or request.get("op") != "supervise":
        raise ValueError("expected an object with op 'supervise'")
    return request


def _field(request: Mapping[str, Any], key: str) -> str:
    value = request.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > 300:
        raise SupervisionError(
            f"request field {key!r}: expected a non-empty string of at most 300 characters"
        )
    return value.strip()
