"""The Listen button against a real engine: a real ``serve`` holding a real sipp call, asked by
the console over its control socket to ring the supervisor's registered phone (a sipp UAS).

What the supervisor then hears and says is tests/e2e/test_e2e_supervision.py; here: the request
reaches the engine with the console user's name, the phone rings, a second request is refused
by the engine with its reason shown, and the audit log names the console user for each.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from config.settings import load_settings
from console.app import create_app, open_context
from console.users import UserStore
from dialer.models import utcnow
from ivr.sipp_peer import free_port, sipp_command
from recordings.access_log import read_access_log
from tests.component.console.conftest import FAST_HASHER, PASSWORD, csrf_of, log_in
from tests.e2e.conftest import SIP_DIR, sipp_uas, start_ivr
from tests.e2e.test_e2e_supervision import FLOW

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
__all__ = ["start_ivr"]  # the fixture, used by name


def test_listen_rings_the_supervisors_phone_through_serve(start_ivr: Any, tmp_path: Path) -> None:
    flow = tmp_path / "supervised_line.yaml"
    flow.write_text(FLOW)
    phone_dir, caller_dir = tmp_path / "phone", tmp_path / "caller"
    phone_dir.mkdir()
    caller_dir.mkdir()
    phone, phone_port = sipp_uas("supervisor_phone", phone_dir, extra=("-key", "rtp_port", "9", "-d", "1000"))
    ivr = start_ivr(flow=flow)
    name = f"alice-{uuid.uuid4().hex[:4]}"
    roster = ivr.data_dir / "supervisors.yaml"
    roster.write_text(f'users:\n  {name}: {{sip_uris: ["sip:{name}@127.0.0.1:{phone_port}"]}}\n')
    roster.chmod(0o600)
    rtp_sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # the caller's audio goes nowhere
    rtp_sink.bind(("127.0.0.1", 0))
    command = sipp_command(
        SIP_DIR / "supervisor_caller.xml",
        f"127.0.0.1:{ivr.port}",
        local_port=free_port(),
        timeout_s=30,
        extra=("-key", "rtp_port", str(rtp_sink.getsockname()[1])),
    )
    caller = subprocess.Popen(command, cwd=caller_dir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    context = open_context(load_settings(env={}, overrides={"data_dir": str(ivr.data_dir)}))
    try:
        context.users = UserStore(context.engine, FAST_HASHER)
        context.users.add(name, "supervisor", PASSWORD, utcnow())
        client = log_in(TestClient(create_app(context)), name)
        connected = ivr.wait_for("call.connected")[0]
        call_id = connected.split("call_id=")[1].split()[0]
        token = csrf_of(client.get("/campaigns").text)
        form = {"csrf": token, "call_id": call_id, "mode": "listen"}
        listen = client.post("/live/supervise", data=form, headers={"accept": "application/json"})
        assert listen.status_code == 200, listen.text
        assert listen.json()["ok"] and listen.json()["message"].startswith("Listen: ringing sip:")
        again = client.post(
            "/live/supervise", data={**form, "mode": "barge"}, headers={"accept": "application/json"}
        )
        assert again.status_code == 409 and not again.json()["ok"], again.text
        assert again.json()["message"].startswith("Barge refused: ") and name in again.json()["message"]
        ivr.wait_for("call.supervision_started", timeout=15)
        assert phone.wait(20) == 0, (phone_dir / "sipp_errors.log").read_text(errors="replace")
        ivr.wait_for("call.supervision_ended", timeout=10)
        rows = [row for row in read_access_log(context.index_engine) if row.action == "supervise"]
    finally:
        if caller.poll() is None:
            caller.kill()
        caller.wait()
        rtp_sink.close()
        context.engine.dispose()
        context.index_engine.dispose()
    requested = [row for row in rows if row.detail["step"] == "requested"]
    assert [(row.actor, row.tty, row.detail["allowed"], row.detail["mode"]) for row in requested] == [
        (name, "console", True, "listen"),
        (name, "console", True, "barge"),
    ]
    assert [row.detail["step"] for row in rows if row not in requested] == ["started", "ended"]
    assert all(row.call_ids == (call_id,) for row in rows)
    assert ivr.stop() == 0
