"""The callees of the campaign acceptance run (bench/acceptance_campaign.py): sipp UAS peers
behind one UDP address, and what each of them saw.

Every behaviour (a person who says yes, one who says no, a busy line, ...) is one ``sipp`` UAS
with its own audio and message trace. The dialer's trunk URI points at :class:`SipRouter`, a
plain UDP relay that sends each new call (by Call-ID) to the sipp of the number it dials and
relays that call's messages both ways. Inside a dialog the peers talk directly (sipp's Contact).
:func:`read_trace` turns sipp's ``-trace_msg`` file into one :class:`CalleeCall` per Call-ID,
stamped with the wall clock at which sipp received or sent each message.
"""

from __future__ import annotations

import re
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ivr.sipp_peer import free_port, require_tool, synthesize_caller_audio

ROOT = Path(__file__).resolve().parents[1]
_STAMP = re.compile(r"^-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)$")


@dataclass(frozen=True)
class Behaviour:
    """One kind of callee: a tests/sip scenario and, for a person, what they say and when
    (seconds after answering)."""

    name: str
    scenario: str
    person: bool = False
    lines: tuple[tuple[float, str], ...] = ()


# Times measured from a run of flows/library/compliance_callback.yaml: each answer falls
# within its question or the 7 s after it (barge-in takes an early one, no-input waits 7 s).
IDENTITY, DOB, PURCHASE, RECHECK, ACKNOWLEDGE = 12.0, 20.0, 33.5, 47.0, 76.5
DOB_KEYS = "DTMF:07041980"  # keyed: a spoken date is misheard too often to script a run on
BEHAVIOURS = (
    Behaviour(
        "yes",
        "uas_person",
        True,
        ((IDENTITY, "Yes."), (DOB, DOB_KEYS), (PURCHASE, "Yes."), (ACKNOWLEDGE, "Yes.")),
    ),
    Behaviour(
        "no_twice",
        "uas_person",
        True,
        ((IDENTITY, "Yes."), (DOB, DOB_KEYS), (PURCHASE, "No."), (RECHECK, "No.")),
    ),
    Behaviour(
        "no_once",
        "uas_person",
        True,
        ((IDENTITY, "Yes."), (DOB, DOB_KEYS), (PURCHASE, "No."), (RECHECK, "Yes.")),
    ),
    Behaviour(
        "call_me_back",
        "uas_person",
        True,
        ((IDENTITY, "Call me back later."), (19.0, "Tomorrow."), (25.5, "Ten thirty."), (34.0, "Yes.")),
    ),
    Behaviour("busy", "uas_busy"),
    Behaviour("no_answer", "uas_no_answer"),
    Behaviour("machine", "uas_voicemail"),
)


def _duration(path: Path) -> float:
    soxi = require_tool("soxi", "sox")
    out = subprocess.run([soxi, "-D", str(path)], capture_output=True, text=True, check=True)
    return float(out.stdout)


_DTMF = {"1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "4": (770, 1209), "5": (770, 1336)}
_DTMF |= {"6": (770, 1477), "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "0": (941, 1336)}


def dtmf_audio(digits: str, path: Path, lead_s: float, tail_s: float) -> Path:
    """In-band DTMF (120 ms tones, 100 ms gaps) as 8 kHz mu-law, like a keypad heard over G.711."""
    tones = []
    for n, digit in enumerate(digits):
        low, high = _DTMF[digit]
        tone = path.with_suffix(f".{n}.wav")
        pad = ["pad", str(lead_s if n == 0 else 0.1), "0"]
        synth = ["synth", "0.12", "sine", str(low), "sine", str(high), "remix", "-", "vol", "0.4", *pad]
        subprocess.run(["sox", "-n", "-r", "8000", "-c", "2", "-e", "u-law", str(tone), *synth], check=True)
        tones.append(str(tone))
    end = ["pad", "0", str(tail_s)]
    subprocess.run(["sox", *tones, "-r", "8000", "-c", "1", "-e", "u-law", str(path), *end], check=True)
    return path


def person_audio(workdir: Path, lines: tuple[tuple[float, str], ...]) -> None:
    """person.wav: "Hello?" at once, then each line starting at its time, then silence. A line
    ``DTMF:07041980`` is keyed in instead of spoken."""
    parts = [synthesize_caller_audio("Hello?", workdir / "hello.wav", lead_s=0.3, tail_s=0.0)]
    at = _duration(parts[0])
    for n, (start, text) in enumerate(lines):
        tail = 60.0 if n == len(lines) - 1 else 0.0
        lead = max(start - at, 0.1)
        if text.startswith("DTMF:"):
            part = dtmf_audio(text.removeprefix("DTMF:"), workdir / f"line{n}.wav", lead, tail)
        else:
            part = synthesize_caller_audio(text, workdir / f"line{n}.wav", lead_s=lead, tail_s=tail)
        at += _duration(part) - tail
        parts.append(part)
    subprocess.run(["sox", *map(str, parts), "-e", "u-law", str(workdir / "person.wav")], check=True)


def machine_audio(workdir: Path) -> None:
    """voicemail.wav: a greeting, a 1 kHz beep, then silence."""
    greeting = synthesize_caller_audio(
        "Hi, you have reached Sam. I can't take your call right now. Please leave a message after the tone.",
        workdir / "greeting.wav",
        lead_s=0.4,
        tail_s=0.2,
    )
    beep = workdir / "beep.wav"
    synth = ["synth", "0.6", "sine", "1000", "vol", "0.5", "pad", "0", "40"]
    subprocess.run(["sox", "-n", "-r", "8000", "-c", "1", "-e", "u-law", str(beep), *synth], check=True)
    voicemail = workdir / "voicemail.wav"
    subprocess.run(["sox", str(greeting), str(beep), "-e", "u-law", str(voicemail)], check=True)


def start_callee(behaviour: Behaviour, workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    """The sipp UAS for ``behaviour`` on a free port, tracing every message to messages.log."""
    workdir.mkdir(parents=True, exist_ok=True)
    if behaviour.person:
        person_audio(workdir, behaviour.lines)
    elif behaviour.scenario == "uas_voicemail":
        machine_audio(workdir)
    port = free_port()
    command = [
        require_tool("sipp", "sip-tester"),
        "-sf",
        str(ROOT / "tests" / "sip" / f"{behaviour.scenario}.xml"),
        "-i",
        "127.0.0.1",
        "-mi",
        "127.0.0.1",
        "-p",
        str(port),
        "-m",
        "100000",
        "-nostdin",
        "-trace_err",
        "-error_file",
        "sipp_errors.log",
        "-trace_msg",
        "-message_file",
        "messages.log",
    ]
    log = (workdir / "sipp.out").open("wb")
    return subprocess.Popen(command, cwd=workdir, stdout=log, stderr=subprocess.STDOUT), port


def _header(message: str, name: str, short: str) -> str:
    for line in message.split("\r\n" if "\r\n" in message else "\n"):
        key, _, value = line.partition(":")
        if key.strip().lower() in (name, short):
            return value.strip()
    return ""


class SipRouter(threading.Thread):
    """A UDP relay: the dialer's INVITE for a number goes to that number's sipp; everything
    else of that call is relayed between the two. A number with no route is dropped (and
    counted in :attr:`unrouted`, which the run reports)."""

    def __init__(self, routes: dict[str, int]) -> None:
        super().__init__(name="sip-router", daemon=True)
        self.routes = routes
        self.callee_ports = set(routes.values())
        self.calls: dict[str, tuple[int, tuple[str, int]]] = {}
        self.unrouted: list[str] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                data, source = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            message = data.decode("utf-8", errors="replace")
            call_id = _header(message, "call-id", "i")
            if not call_id:
                continue  # keep-alive
            if source[1] in self.callee_ports:
                known = self.calls.get(call_id)
                if known is not None:
                    self.sock.sendto(data, known[1])
                continue
            if call_id not in self.calls:
                number = message.split(" ", 2)[1].split(":", 1)[-1].split("@", 1)[0]
                port = self.routes.get(number)
                if port is None:
                    self.unrouted.append(number)
                    continue
                self.calls[call_id] = (port, source)
            self.sock.sendto(data, ("127.0.0.1", self.calls[call_id][0]))

    def stop(self) -> None:
        self.stopping.set()
        self.join(5)
        self.sock.close()


@dataclass
class CalleeCall:
    """One call as a callee saw it (wall clock, UTC)."""

    call_id: str
    number: str
    invite_at: datetime
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    cancelled_at: datetime | None = None
    final_status: int | None = None
    messages: list[str] = field(default_factory=list)


def read_trace(path: Path) -> dict[str, CalleeCall]:
    """Every call in a sipp ``-trace_msg`` file, by Call-ID; retransmissions count once."""
    calls: dict[str, CalleeCall] = {}
    if not path.exists():
        return calls
    blocks: list[tuple[datetime, bool, str]] = []
    stamp: datetime | None = None
    received = False
    body: list[str] = []
    for line in path.read_text(errors="replace").splitlines():
        match = _STAMP.match(line)
        if match:
            if stamp is not None:
                blocks.append((stamp, received, "\n".join(body).strip()))
            stamp = datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
            received, body = False, []
        elif stamp is not None and not body and "message received" in line:
            received = True
        elif stamp is not None and not (not body and "message sent" in line):
            body.append(line)
    if stamp is not None:
        blocks.append((stamp, received, "\n".join(body).strip()))
    for at, inbound, message in blocks:
        call_id = _header(message, "call-id", "i")
        first = message.split("\n", 1)[0]
        if not call_id or not first:
            continue
        call = calls.get(call_id)
        if call is None:
            if not (inbound and first.startswith("INVITE ")):
                continue
            number = first.split(" ", 2)[1].split(":", 1)[-1].split("@", 1)[0]
            call = calls[call_id] = CalleeCall(call_id, number, at)
        call.messages.append(f"{'<' if inbound else '>'} {first}")
        cseq = _header(message, "cseq", "cseq")
        if not inbound and first.startswith("SIP/2.0 ") and cseq.endswith("INVITE"):
            status = int(first.split()[1])
            if status >= 200 and call.final_status is None:
                call.final_status = status
                if status == 200:
                    call.answered_at = at
                elif call.ended_at is None:
                    call.ended_at = at
        elif inbound and first.startswith(("BYE ", "CANCEL ")) and call.ended_at is None:
            call.ended_at = at
            if first.startswith("CANCEL "):
                call.cancelled_at = at
        elif not inbound and first.startswith("BYE ") and call.ended_at is None:
            call.ended_at = at
    return calls
