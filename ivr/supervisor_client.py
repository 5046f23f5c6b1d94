"""The client end of serve's control socket (:mod:`ivr.supervisor_control`), for the CLI.

Light on purpose: the command line and the console load it, so it imports nothing of pjsua2.
The roster reader is here too, so the engine and the console check a roster the same way.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from config.errors import IvrError
from supervision.supervisor_access import RosterError, Supervisor, parse_roster


class SupervisionError(IvrError):
    """A supervision request could not be made (no serve running, roster problem, refused)."""


SOCKET_PATH_MAX = 104  # sun_path is 108 bytes on Linux, 104 on the BSDs


def control_dir(data_path: Path) -> Path:
    """Where every serve process of a data directory keeps its control socket."""
    return data_path / "control"


@contextlib.contextmanager
def socket_address(path: Path) -> Iterator[str]:
    """An address for the Unix socket ``path`` that fits ``sun_path`` however deep its folder is.

    A long path is reached through an open descriptor of its folder
    (``/proc/self/fd/N/serve-PID.sock``, Linux), so a data directory anywhere works and the
    socket still lives in ``<data dir>/control/`` where every client finds it.
    """
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        yield str(path)
        return
    folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{folder}/{path.name}"
    finally:
        os.close(folder)


def send_request(data_path: Path, request: Mapping[str, Any], timeout_s: float = 10.0) -> dict[str, Any]:
    """Ask every serve process under ``data_path`` in turn; the one holding the call answers."""
    sockets = sorted(control_dir(data_path).glob("serve-*.sock"))
    if not sockets:
        raise SupervisionError(
            f"no running serve under {data_path} (no control socket in {control_dir(data_path)})"
        )
    payload = json.dumps({"op": "supervise", **request}).encode() + b"\n"
    misses: list[str] = []
    for path in sockets:
        try:
            reply = _ask(path, payload, timeout_s)
        except OSError as exc:  # a socket a dead process left behind
            misses.append(f"{path.name}: {exc.strerror or exc}")
            continue
        if reply.get("found") is False:
            misses.append(str(reply.get("error", "")))
            continue
        return reply
    return {"ok": False, "error": f"no live call {request.get('call_id')} ({'; '.join(misses)})"}


def _ask(path: Path, payload: bytes, timeout_s: float) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout_s)
        with socket_address(path) as address:
            sock.connect(address)
        sock.sendall(payload)
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    try:
        reply = json.loads(data)
    except ValueError:
        raise SupervisionError(f"{path}: not a JSON reply: {data[:80]!r}") from None
    if not isinstance(reply, dict):
        raise SupervisionError(f"{path}: not a JSON object: {data[:80]!r}")
    return reply


def roster_path(data_path: Path) -> Path:
    """The supervisor roster: who may supervise, their phones and PIN hashes (0600)."""
    return data_path / "supervisors.yaml"


def load_roster(path: Path) -> dict[str, Supervisor]:
    """The supervisor roster file; refused when missing, unreadable, malformed or writable by others."""
    try:
        mode = path.stat().st_mode
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SupervisionError(f"{path}: no supervisor roster (see docs/supervision.md)") from None
    except OSError as exc:
        raise SupervisionError(f"{path}: cannot read the supervisor roster: {exc.strerror}") from exc
    if mode & 0o022:
        raise SupervisionError(f"{path}: others may write the supervisor roster; chmod 600 it")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)
        raise SupervisionError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    try:
        return parse_roster(raw, str(path))
    except RosterError as exc:
        raise SupervisionError(str(exc)) from exc


def store_pin_hash(path: Path, user: str, pin_hash: str) -> None:
    """Set ``user``'s PIN hash in the roster (checked first), replacing the file atomically, 0600.

    The user must already be in the roster; YAML comments in the file are not kept.
    """
    load_roster(path)  # refuses a missing, malformed or world-writable roster
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    users = raw["users"]
    if user not in users:
        raise SupervisionError(f"{path}: users.{user}: no such user in the supervisor roster")
    users[user] = {**(users[user] or {}), "pin_hash": pin_hash}
    try:
        parse_roster(raw, str(path))
    except RosterError as exc:
        raise SupervisionError(str(exc)) from exc
    temp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            yaml.safe_dump(raw, out, sort_keys=False)
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)
