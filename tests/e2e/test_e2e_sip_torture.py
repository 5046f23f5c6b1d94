"""SIP robustness: hostile packets, an INVITE flood and call churn thrown at a real ``serve``.

A hotline on a public SIP port gets scanners, broken phones and floods. After each attack these
tests check what an operator would: the process is alive and still answers SIP, a real call
placed meanwhile has an intact recording, and no line was leaked (every line can still be filled
with answered calls). All traffic goes to 127.0.0.1 only.

TORTURE_STRESS=1 runs the churn at full size (1,500 calls at 150/s); TORTURE_CHURN_CALLS,
TORTURE_CHURN_RATE, TORTURE_FLOOD_INVITES and TORTURE_FLOOD_RATE set the sizes one by one.
(Not IVR_*: ``serve`` reads every IVR_* variable as a setting and refuses unknown ones.)
"""

from __future__ import annotations

import csv
import os
import socket
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from ivr.sipp_peer import free_port, sipp_command, synthesize_caller_audio
from tests.e2e.conftest import SIP_DIR, IvrProcess, active_seconds, read_stereo
from tests.e2e.hostile_sip import BAD_OFFERS, FOREIGN_MEDIA, MALFORMED, OVER_TCP
from tests.e2e.raw_sip import LOOPBACK, SipSocket, Transport, sdp_offer
from tests.e2e.rfc4475_cases import TORTURE_INVALID, TORTURE_VALID
from tests.e2e.sip_attack import Attack
from tests.e2e.sip_uac import Uac, drive, send_paced
from tests.e2e.test_e2e_inbound_calls import assert_complete

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STRESS = os.environ.get("TORTURE_STRESS") == "1"
LINES = 24  # calls one process takes at once in the flood and churn tests
LIMITS = {"IVR_SIP__ENGINE_CALL_LIMIT": "32"}  # the build's PJSUA_MAX_CALLS allows more than LINES
AFTER_QUESTION_S = 7.0  # the demo flow's greeting and question; the real caller speaks after them


def env_number(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout:.0f} s: {what}")
        time.sleep(0.05)


def log_tail(ivr: IvrProcess, lines: int = 25) -> str:
    return "\n".join(ivr.lines[-lines:])


# -- liveness ---------------------------------------------------------------------------------


def probe(port: int, timeout: float = 5.0) -> int | None:
    """The status an OPTIONS gets: proof the SIP stack still reads and answers, not just exists."""
    with SipSocket("UDP", port) as sock:
        leg = sock.leg()
        uac = Uac("UDP", sock.local_port, leg.request_uri)
        for data in uac.send(leg.request("OPTIONS"), time.monotonic()):
            sock.send(data)
        drive(sock, uac, lambda: bool(uac.finals()), timeout)
        finals = uac.finals()
        return finals[0].status if finals else None


def assert_alive(ivr: IvrProcess, after: str) -> None:
    status = probe(ivr.port) if ivr.proc.poll() is None else None
    code = ivr.proc.poll()
    if code is not None:
        raise AssertionError(f"serve died (exit status {code}) after {after}; log tail:\n{log_tail(ivr)}")
    assert status is not None, f"serve stopped answering OPTIONS after {after}; log tail:\n{log_tail(ivr)}"


@contextmanager
def rtp_sink() -> Iterator[int]:
    """A bound, never-read UDP port for offers to name: RTP the engine sends goes nowhere else."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink:
        sink.bind((LOOPBACK, 0))
        yield int(sink.getsockname()[1])


# -- one hostile message ----------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    label: str
    call_id: str
    finals: tuple[int, ...]
    problem: str | None


def run_attack(ivr: IvrProcess, attack: Attack, transport: Transport, rtp_port: int) -> Outcome:
    """Send one attack, wait as long as its expectation needs, and hang up any call it set up."""
    label = f"{attack.name} over {transport}"
    with SipSocket(transport, ivr.port) as sock:
        leg = sock.leg()
        uac = Uac(transport, sock.local_port, leg.request_uri)
        for data in uac.send(
            attack.build(leg, rtp_port), time.monotonic(), retransmit=attack.expect.required
        ):
            sock.send(data)
        probe_id = ""
        if attack.expect.required:
            drive(sock, uac, lambda: bool(uac.finals()), 15.0)
        elif transport == "UDP":
            # pjsip reads one socket's datagrams in order, so once an OPTIONS sent after the
            # attack is answered, any answer to the attack itself has been sent too.
            probe_leg = sock.leg()
            probe_id = probe_leg.call_id
            for data in uac.send(probe_leg.request("OPTIONS"), time.monotonic()):
                sock.send(data)
            drive(sock, uac, lambda: any(m.call_id == probe_id for m in uac.finals()), 5.0)
            drive(sock, uac, lambda: not _ringing(uac, probe_id), 15.0)
        else:  # TCP: a stream may wait for more bytes; give it two seconds or until it closes
            drive(sock, uac, lambda: bool(uac.finals()) and not _ringing(uac, ""), 2.0)
        drive(sock, uac, lambda: not uac.calls_up, 10.0)
        problems = [attack.expect.problem(uac.finals(exclude=probe_id))]
        if probe_id and not any(m.call_id == probe_id for m in uac.finals()):
            problems.append("the OPTIONS sent right after it on the same socket got no answer")
        if uac.calls_up:
            problems.append(
                f"a call it got answered could not be hung up: {[tx.call_id for tx in uac.calls_up]}"
            )
        if sock.unparsed:
            problems.append(f"the engine sent something that is not SIP: {sock.unparsed[0][:80]!r}")
        codes = tuple(m.status for m in uac.finals(exclude=probe_id))
    found = [p for p in problems if p]
    return Outcome(label, leg.call_id, codes, "; ".join(found) if found else None)


def _ringing(uac: Uac, exclude: str) -> bool:
    """Some request got a provisional response and no final one yet."""
    return any(tx.statuses and tx.final is None and tx.call_id != exclude for tx in uac.transactions.values())


# -- a real caller while the attacks go on ------------------------------------------------------


def start_real_call(ivr: IvrProcess, workdir: Path) -> subprocess.Popen[str]:
    """The demo's caller (sipp, espeak-ng speech as RTP): asks for the balance after the question."""
    workdir.mkdir(parents=True)
    synthesize_caller_audio(
        "I want to check my balance", workdir / "caller.wav", lead_s=AFTER_QUESTION_S, tail_s=30.0
    )
    cmd = sipp_command(
        SIP_DIR / "caller_speaks.xml", f"{LOOPBACK}:{ivr.port}", local_port=free_port(), timeout_s=90
    )
    return subprocess.Popen(cmd, cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def attack_during_a_real_call(
    ivr: IvrProcess, workdir: Path, attacks: list[Attack], tcp: set[str] | frozenset[str] = frozenset()
) -> None:
    """Run every attack (over UDP, and over TCP too when named in ``tcp``) while a real caller
    talks to ``ivr``. Fails at once if the engine dies or stops answering; otherwise at the end,
    listing every broken expectation, the real call's fate and what is wrong with its recording."""
    caller = start_real_call(ivr, workdir / "caller")
    outcomes: list[Outcome] = []
    try:
        ivr.wait_for("call.connected", timeout=30)
        with rtp_sink() as rtp_port:
            for attack in attacks:
                transports: list[Transport] = ["UDP", "TCP"] if attack.name in tcp else ["UDP"]
                for transport in transports:
                    outcome = run_attack(ivr, attack, transport, rtp_port)
                    assert_alive(ivr, after=outcome.label)
                    outcomes.append(outcome)
        output, _ = caller.communicate(timeout=120)
    finally:
        if caller.poll() is None:
            caller.kill()
            caller.communicate()
    report = [f"{o.label}: {o.problem}" for o in outcomes if o.problem]
    if caller.returncode != 0:
        report.append(f"the real call failed (sipp exit {caller.returncode}):\n{output[-2000:]}")
    refused = {o.call_id for o in outcomes if o.finals and not any(200 <= code < 300 for code in o.finals)}
    try:
        assert_real_call_recorded(ivr, refused)
    except AssertionError as exc:
        report.append(f"recordings: {exc}")
    assert not report, "\n".join(report)
    assert ivr.stop() == 0, "serve did not stop cleanly after the attacks"


def assert_real_call_recorded(ivr: IvrProcess, refused: set[str]) -> None:
    """Every recording is intact, the real caller's shows the whole conversation, and no call
    the engine refused has one."""
    wait_until(
        lambda: len(ivr.events("call.ended")) >= len(ivr.events("call.connected")),
        30,
        "every connected call ended and closed its recording",
    )
    recordings = ivr.recordings()
    for rec in recordings:
        assert_complete(rec)
    call_ids = {str(rec["tags"].get("sip_call_id", "")) for rec in recordings}
    assert not call_ids & refused, f"calls refused yet recorded: {call_ids & refused}"
    real = [rec for rec in recordings if not str(rec["tags"].get("sip_call_id", "")).startswith("torture-")]
    assert len(real) == 1, real
    rec = real[0]
    assert rec["outcome"] == "understood", rec
    caller, bot = read_stereo(rec["path"])
    assert caller.size == bot.size
    assert active_seconds(caller) > 0.8  # the caller's sentence is on the left ...
    assert active_seconds(bot) > 3.0  # ... greeting, question and read-back on the right


def test_unusable_offers_are_refused_with_488_during_a_real_call(start_ivr: Any, tmp_path: Path) -> None:
    """Broken or unsupported SDP must cost the caller a 488 (or pjsua's own 400), never the process."""
    attack_during_a_real_call(start_ivr(), tmp_path, BAD_OFFERS, OVER_TCP)


def test_media_address_outside_allowed_networks_is_refused(start_ivr: Any, tmp_path: Path) -> None:
    """An offer whose media address is neither the caller's nor in an allowed network would make
    the engine send RTP at a third party (a reflection attack): it must be refused with 488."""
    attack_during_a_real_call(start_ivr(), tmp_path, FOREIGN_MEDIA, OVER_TCP)


def test_malformed_packets_leave_serve_answering(start_ivr: Any, tmp_path: Path) -> None:
    """Truncated, oversized, headless and binary packets are dropped or rejected, never accepted."""
    attack_during_a_real_call(start_ivr(), tmp_path, MALFORMED, OVER_TCP)


def test_rfc4475_valid_torture_messages_are_handled(start_ivr: Any, tmp_path: Path) -> None:
    """Valid but tortuous messages (folding, escapes, odd schemes) each get a proper answer."""
    attack_during_a_real_call(start_ivr(), tmp_path, TORTURE_VALID, OVER_TCP)


def test_rfc4475_invalid_torture_messages_are_dropped_or_rejected(start_ivr: Any, tmp_path: Path) -> None:
    """Invalid messages (bad framing, duplicate identity headers, overflowing numbers) never set up
    a call and never hurt the process."""
    attack_during_a_real_call(start_ivr(), tmp_path, TORTURE_INVALID, OVER_TCP)


# -- load: flood and churn ------------------------------------------------------------------------


@dataclass(frozen=True)
class SippRun:
    returncode: int
    output: str
    stats: dict[str, str]

    def counter(self, name: str) -> int:
        return int(self.stats.get(name, "-1"))


def run_sipp(
    ivr: IvrProcess,
    workdir: Path,
    *,
    calls: int,
    concurrent: int,
    rate: float,
    pause_ms: int,
    timeout_s: float,
) -> SippRun:
    """``caller_short_call`` ``calls`` times; returns sipp's exit status and final counters."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = sipp_command(
        SIP_DIR / "caller_short_call.xml",
        f"{LOOPBACK}:{ivr.port}",
        local_port=free_port(),
        calls=calls,
        concurrent=concurrent,
        rate=rate,
        timeout_s=timeout_s,
        extra=("-d", str(pause_ms), "-trace_stat", "-stf", "stats.csv", "-fd", "1"),
    )
    proc = subprocess.run(
        cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout_s + 30, check=False
    )
    stats_file = workdir / "stats.csv"
    rows = (
        list(csv.DictReader(stats_file.read_text().splitlines(), delimiter=";"))
        if stats_file.exists()
        else []
    )
    errors = workdir / "sipp_errors.log"
    output = (
        proc.stdout[-3000:] + proc.stderr[-3000:] + (errors.read_text()[-3000:] if errors.exists() else "")
    )
    return SippRun(proc.returncode, output, rows[-1] if rows else {})


def assert_every_line_free(ivr: IvrProcess, workdir: Path, lines: int) -> None:
    """Fill every line with an answered call at once: a line leaked earlier would refuse one."""
    run = run_sipp(ivr, workdir, calls=lines, concurrent=lines, rate=10, pause_ms=5000, timeout_s=60)
    assert run.returncode == 0, f"not all {lines} lines answered at once:\n{run.output}"
    assert run.counter("SuccessfulCall(C)") == lines, run.stats


def test_invite_flood_gets_a_final_answer_for_every_invite(start_ivr: Any, tmp_path: Path) -> None:
    """A flood of INVITEs (distinct calls, each hung up as soon as it is answered) must be met
    with 200, 486 or 503 + Retry-After for every one, and leave every line usable."""
    count = int(env_number("TORTURE_FLOOD_INVITES", 1000))
    rate = env_number("TORTURE_FLOOD_RATE", 100)
    ivr = start_ivr(max_calls=LINES, **LIMITS)
    with rtp_sink() as rtp_port, SipSocket("UDP", ivr.port, rcvbuf=8 << 20) as sock:
        uac = Uac("UDP", sock.local_port, f"sip:ivr@{LOOPBACK}:{ivr.port}")
        invites = [sock.leg().request("INVITE", sdp_offer(rtp_port)) for _ in range(count)]
        started = time.monotonic()
        send_paced(sock, uac, invites, rate)
        sending_s = time.monotonic() - started
        drive(sock, uac, lambda: uac.settled, 45.0)
    assert sending_s < count / rate * 1.5 + 2, (
        f"the client could not keep up: {count} INVITEs took {sending_s:.1f} s"
    )
    calls = [tx for tx in uac.transactions.values() if tx.method == "INVITE"]
    assert len(calls) == count
    assert_alive(ivr, after="the flood")
    unanswered = [tx.call_id for tx in calls if tx.final is None]
    assert not unanswered, f"{len(unanswered)} of {count} INVITEs got no final response"
    codes = Counter(tx.final.status for tx in calls if tx.final is not None)
    assert set(codes) <= {200, 486, 503}, codes
    assert codes[200] >= 1, f"not one call answered: {codes}"
    no_retry_after = [
        tx.call_id
        for tx in calls
        if tx.final and tx.final.status == 503 and not tx.final.header("retry-after")
    ]
    assert not no_retry_after, f"{len(no_retry_after)} 503s without Retry-After"
    hung_up_by_engine = {r.call_id for r in uac.engine_requests if r.method == "BYE"}
    bad_byes = Counter(
        tx.bye_status
        for tx in calls
        if tx.answered and tx.bye_status != 200 and tx.call_id not in hung_up_by_engine
    )
    assert not bad_byes, f"BYEs of answered calls not answered 200: {bad_byes} (None: no answer)"
    # Every answered call was released and its recording closed: nothing is left holding a line.
    ivr.wait_for("call.released", count=codes[200], timeout=60)
    ivr.wait_for("call.ended", count=codes[200], timeout=60)
    assert_every_line_free(ivr, tmp_path / "after-flood", LINES)
    assert ivr.stop() == 0


def test_call_churn_completes_every_call(start_ivr: Any, tmp_path: Path) -> None:
    """Many short calls back to back (answered, a pause, BYE): none may fail, each must leave a
    complete recording, and afterwards every line must still be free."""
    calls = int(env_number("TORTURE_CHURN_CALLS", 1500 if STRESS else 300))
    rate = env_number("TORTURE_CHURN_RATE", 150 if STRESS else 50)
    ivr = start_ivr(max_calls=LINES, **LIMITS)
    run = run_sipp(
        ivr,
        tmp_path / "churn",
        calls=calls,
        concurrent=16,
        rate=rate,
        pause_ms=100,
        timeout_s=calls / rate + 90,
    )
    succeeded, failed = run.counter("SuccessfulCall(C)"), run.counter("FailedCall(C)")
    assert (run.returncode, succeeded, failed) == (0, calls, 0), (
        f"{failed} of {calls} calls at {rate:g}/s failed, {succeeded} succeeded "
        f"(sipp exit {run.returncode}):\n{run.output}"
    )
    assert_alive(ivr, after=f"{calls} calls at {rate:g}/s")
    ivr.wait_for("call.ended", count=calls, timeout=120)
    assert len(ivr.events("call.ended")) == calls
    assert len(ivr.events("call.released")) == calls
    recordings = ivr.recordings()
    assert len(recordings) == calls
    for rec in recordings:
        assert_complete(rec)
    assert_every_line_free(ivr, tmp_path / "after-churn", LINES)
    assert ivr.stop() == 0
