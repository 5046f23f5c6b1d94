"""The control channel's checks that need no running engine: the roster file and the requests."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest

from ivr.supervisor_client import (
    SOCKET_PATH_MAX,
    SupervisionError,
    control_dir,
    load_roster,
    send_request,
    socket_address,
)
from ivr.supervisor_control import _parse_request


def roster(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "supervisors.yaml"
    path.write_text(text)
    path.chmod(mode)
    return path


def test_a_private_roster_loads(tmp_path: Path) -> None:
    path = roster(tmp_path, 'users:\n  alice: {roles: [supervisor], sip_uris: ["sip:alice@pbx"]}\n')
    assert load_roster(path)["alice"].uris == frozenset({"sip:alice@pbx"})


def test_a_roster_others_may_write_is_refused(tmp_path: Path) -> None:
    path = roster(tmp_path, "users: {}\n", mode=0o662)
    with pytest.raises(SupervisionError, match="others may write the supervisor roster; chmod 600"):
        load_roster(path)


def test_roster_problems_say_where(tmp_path: Path) -> None:
    with pytest.raises(SupervisionError, match="no supervisor roster"):
        load_roster(tmp_path / "missing.yaml")
    bad = roster(tmp_path, "users:\n  alice: [unclosed\n")
    with pytest.raises(SupervisionError, match=r"supervisors.yaml:3:1: invalid YAML"):
        load_roster(bad)
    wrong = roster(tmp_path, "users:\n  alice: {roles: supervisor}\n")
    with pytest.raises(SupervisionError, match=r"users.alice.roles: expected a list of strings"):
        load_roster(wrong)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"op": "supervise"}', "one JSON object on one line"),
        (b'{"op": "hangup"}\n', "expected an object with op 'supervise'"),
        (b"[1]\n", "expected an object with op 'supervise'"),
        (b"x" * 5000 + b"\n", "at most 4096 bytes"),
    ],
)
def test_bad_requests_are_refused(line: bytes, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        _parse_request(line)


def test_no_running_serve_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SupervisionError, match="no running serve under"):
        send_request(tmp_path, {"call_id": "x"})


def test_a_deep_data_dir_still_gets_a_control_socket_the_client_reaches(tmp_path: Path) -> None:
    """sun_path holds 108 bytes; a data dir nested deeper (CI's temp dirs) must still work."""
    data = tmp_path / ("deep-" * 12) / "data"
    folder = control_dir(data)
    folder.mkdir(parents=True)
    path = folder / "serve-1.sock"
    assert len(str(path)) > SOCKET_PATH_MAX
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    with socket_address(path) as address:
        server.bind(address)
    server.listen(1)
    assert path.is_socket()  # the socket lives where clients look for it

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b'{"ok": true, "found": true}\n')

    thread = threading.Thread(target=answer)
    thread.start()
    try:
        assert send_request(data, {"call_id": "c1"}) == {"ok": True, "found": True}
    finally:
        thread.join(5)
        server.close()
