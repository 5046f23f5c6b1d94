"""Kamailio (``run_ivr.py balancer``) in front of two real ``serve`` nodes, called by sipp.

One scenario, in order, so the nodes start once: calls spread over both nodes and every caller's
BYE (routed by Record-Route through Kamailio) reaches the node that answered; node A is killed
and calls go on to node B (probing drops A within its interval, so no call even tries A);
A comes back and is used again; B is drained with a call live on it: the call finishes, new
calls go to A, and B exits 0.
"""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from config.settings import Settings
from ivr.balancer_config import plan_from_settings
from ivr.balancer_process import KamailioProcess, find_kamailio
from ivr.sipp_peer import free_port, sipp_command
from tests.e2e.conftest import ROOT, SIP_DIR, IvrProcess

PROBE_S = 1
pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _spawn(argv: list[str], env: dict[str, str]) -> IvrProcess:
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT, env=env
    )
    ivr = IvrProcess(proc, 0, Path())
    assert proc.stdout is not None
    stream = proc.stdout
    threading.Thread(target=lambda: ivr.lines.extend(iter(stream.readline, "")), daemon=True).start()
    return ivr


def start_node(data_dir: Path, port: int) -> IvrProcess:
    """A ``serve`` node; nodes share one data dir as engines share a recordings folder (and the
    TTS cache is rendered once)."""
    env = {
        **os.environ,
        "IVR_SIP__RTP_PORT_START": str(random.randrange(20000, 60000, 200)),
        "IVR_SIP__RTP_PORT_RANGE": "200",
        "IVR_MEDIA__SPEECH_WORKERS": "0",  # silent callers: no speech pool to start per node
        "PYTHONUNBUFFERED": "1",
    }
    argv = [sys.executable, str(ROOT / "run_ivr.py"), "serve", "--bind", "127.0.0.1", "--sip-port", str(port)]
    argv += ["--data-dir", str(data_dir), "--flow", str(ROOT / "flows" / "library" / "demo.yaml")]
    argv += ["--workers", "1", "--max-calls", "8"]
    node = _spawn(argv, env)
    node.port, node.data_dir = port, data_dir
    return node


def calls(balancer_port: int, workdir: Path, count: int, pause_ms: int) -> subprocess.Popen[str]:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = sipp_command(
        SIP_DIR / "balancer_short_call.xml",
        f"127.0.0.1:{balancer_port}",
        local_port=free_port(),
        calls=count,
        concurrent=count,
        rate=20,
        timeout_s=40,
        extra=("-d", str(pause_ms)),
    )
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(sipp: subprocess.Popen[str], workdir: Path) -> None:
    out, _ = sipp.communicate(timeout=60)
    errors = workdir / "sipp_errors.log"
    detail = out[-2000:] + (errors.read_text(errors="replace")[-2000:] if errors.exists() else "")
    assert sipp.returncode == 0, detail


def offered(node: IvrProcess) -> int:
    return len(node.events("call.offered"))


def failovers(balancer: IvrProcess) -> list[str]:
    return [line for line in balancer.lines if "trying the next node" in line]


@pytest.fixture
def kamailio() -> str:
    binary = find_kamailio()
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("kamailio is not installed (scripts/setup.sh installs Debian's kamailio)")
        pytest.skip("kamailio is not installed")
    return binary


def test_balancer_spreads_fails_over_and_drains_without_dropping_a_call(
    kamailio: str, tmp_path: Path
) -> None:
    port_a, port_b, port_lb = free_port(), free_port(), free_port()
    started: list[IvrProcess] = []
    try:
        data = tmp_path / "data"
        node_a, node_b = start_node(data, port_a), start_node(data, port_b)
        started += [node_a, node_b]
        env = {**os.environ, "IVR_BALANCER__PROBE_INTERVAL_S": str(PROBE_S), "PYTHONUNBUFFERED": "1"}
        env["IVR_BALANCER__FAILOVER_TIMEOUT_S"] = "3"  # a loaded CI machine is slow to say 100
        lb_argv = [sys.executable, str(ROOT / "run_ivr.py"), "balancer", "--listen", f"127.0.0.1:{port_lb}"]
        balancer = _spawn([*lb_argv, "--node", f"127.0.0.1:{port_a}", "--node", f"127.0.0.1:{port_b}"], env)
        started.append(balancer)
        node_a.wait_for("serve.ready", timeout=90)
        node_b.wait_for("serve.ready", timeout=90)
        balancer.wait_for("balancer.started", timeout=20)
        time.sleep(PROBE_S + 0.5)  # one probe round: both nodes known up

        # 1. Six calls at once spread over both nodes; each BYE reaches the node that answered.
        finish(calls(port_lb, tmp_path / "spread", 6, 1500), tmp_path / "spread")
        assert offered(node_a) >= 2 and offered(node_b) >= 2, (offered(node_a), offered(node_b))
        assert offered(node_a) + offered(node_b) == 6
        for node in (node_a, node_b):
            ended = node.wait_for("call.ended", count=offered(node), timeout=20)
            assert all("hung_up_by=remote" in line for line in ended), ended

        # 2. Node A dies (and is started again at once: it takes a while to listen). Calls go
        # on, to B; after one probe interval no call even tries the dead A.
        node_a.proc.kill()
        node_a.proc.wait(10)
        node_a = start_node(data, port_a)
        started.append(node_a)
        finish(calls(port_lb, tmp_path / "after-kill", 2, 300), tmp_path / "after-kill")
        time.sleep(PROBE_S + 0.5)
        tried_before = len(failovers(balancer))
        a_before, b_before = offered(node_a), offered(node_b)  # the new A may already listen
        finish(calls(port_lb, tmp_path / "probed", 3, 300), tmp_path / "probed")
        # Each call offered once: to B, or to A only once it listens again (no tries at a dead A).
        assert offered(node_b) - b_before + offered(node_a) - a_before == 3
        assert len(failovers(balancer)) == tried_before, failovers(balancer)

        # 3. A is back on its port and answers OPTIONS again: it gets calls again.
        node_a.wait_for("serve.ready", timeout=90)
        time.sleep(PROBE_S + 0.5)

        # 4. B is drained with a call live on it: that call finishes, new calls go to A.
        a_before, b_before = offered(node_a), offered(node_b)
        live = calls(port_lb, tmp_path / "live", 2, 5000)  # call_load: one on each node
        node_b.wait_for("call.connected", count=b_before + 1, timeout=20)
        node_a.wait_for("call.connected", count=a_before + 1, timeout=20)
        os.kill(node_b.proc.pid, signal.SIGUSR1)
        node_b.wait_for("serve.draining", timeout=10)
        time.sleep(PROBE_S + 0.5)  # B's OPTIONS answer 503: out of the set
        b_live = offered(node_b)
        finish(calls(port_lb, tmp_path / "during-drain", 3, 300), tmp_path / "during-drain")
        assert offered(node_b) == b_live
        assert offered(node_a) == a_before + 4
        finish(live, tmp_path / "live")
        assert node_b.proc.wait(30) == 0
        assert "completed=" + str(b_live) in node_b.events("serve.stopped")[-1]
        assert balancer.proc.poll() is None
        balancer.proc.send_signal(signal.SIGTERM)
        assert balancer.proc.wait(15) == 0
    finally:
        for proc in started:
            if proc.proc.poll() is None:
                proc.proc.kill()
                proc.proc.wait()


def test_serve_workers_puts_kamailio_in_front_of_its_workers(
    kamailio: str, start_ivr: Any, tmp_path: Path
) -> None:
    ivr = start_ivr(
        workers=2,
        IVR_BALANCER__FRONT="kamailio",
        IVR_BALANCER__FAILOVER_TIMEOUT_S="5",
        IVR_MEDIA__SPEECH_WORKERS="0",
    )
    ivr.wait_for("balancer.started")
    finish(calls(ivr.port, tmp_path / "calls", 4, 1000), tmp_path / "calls")
    ivr.wait_for("call.ended", count=4, timeout=20)
    assert not ivr.events("call.redirected")
    workers = sorted(line.split()[0] for line in ivr.events("call.offered"))
    assert workers == ["worker=0", "worker=0", "worker=1", "worker=1"]  # fewest live calls first
    assert ivr.stop() == 0
    assert "worker_exit_codes=0,0" in ivr.events("serve.stopped")[-1]


def test_the_rendered_config_is_private_checked_by_kamailio_and_removed_after(kamailio: str) -> None:
    plan = plan_from_settings(Settings(), ("127.0.0.1:5071", "127.0.0.1:5072"), f"127.0.0.1:{free_port()}")
    process = KamailioProcess(plan)
    process.prepare()  # kamailio -c accepts it, or this raises with Kamailio's complaint
    assert stat.S_IMODE(process.dir.stat().st_mode) == 0o700
    files = sorted(path.name for path in process.dir.iterdir())
    assert files == ["dispatcher.list", "kamailio.cfg"]
    assert all(stat.S_IMODE((process.dir / name).stat().st_mode) == 0o600 for name in files)
    assert process.stop() == 0 and not process.dir.exists()
