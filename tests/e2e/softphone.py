"""A real softphone for the e2e tests: Debian's ``baresip``, headless, driven over ``ctrl_tcp``.

sipp replays what we scripted; baresip is a SIP client somebody else wrote, with its own timers,
CANCEL/BYE handling and RFC 2833 sender, so it finds teardown paths our scenarios never take.
It runs from its own config directory, bound to 127.0.0.1 only (SIP, RTP and the control
socket), never registers, loads no NAT, presence or MWI modules, sends a WAV of silence as its
microphone (``aufile``) and discards what it hears (an ``aubridge`` device nothing reads).
Commands and call events travel as JSON netstrings on the ``ctrl_tcp`` socket.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import wave
from collections.abc import Collection
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path
from typing import Any

from ivr.sipp_peer import free_port, require_tool

# Events baresip 1.0 reports for a call (``class: call`` on the control socket).
CALL_EVENTS = frozenset({"CALL_INCOMING", "CALL_RINGING", "CALL_PROGRESS", "CALL_ESTABLISHED", "CALL_CLOSED"})


@dataclass(frozen=True)
class PhoneEvent:
    """One ``{"event": true, ...}`` message from baresip, with when it arrived."""

    type: str
    call_id: str  # the SIP Call-ID, the same string the IVR logs as sip_call_id
    param: str
    at: float  # time.monotonic()


def write_silence(path: Path, seconds: float) -> Path:
    """An 8 kHz 16-bit mono WAV of silence: the microphone of a caller who only uses the keypad.

    baresip's aufile source ends the call at the end of the file, so make it outlast any call.
    """
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x00" * int(seconds * 8000))
    return path


def baresip_config(sip_port: int, ctrl_port: int, rtp_start: int, microphone: Path) -> str:
    """A minimal ``config``: loopback only, PCMU, file in, nothing out, no NAT helpers."""
    return "\n".join(
        [
            "poll_method\tepoll",
            f"sip_listen\t127.0.0.1:{sip_port}",
            "net_interface\t127.0.0.1",  # SDP c= and RTP sockets on loopback, not the host's NIC
            "dns_server\t127.0.0.1:53",  # only IP literals are dialled; never ask a real resolver
            "call_local_timeout\t120",
            "call_max_calls\t4",
            f"audio_source\taufile,{microphone}",
            "audio_player\taubridge,discard",  # a bridge device with no reader: a null speaker
            "audio_alert\taubridge,discard",
            "ausrc_srate\t8000",
            "ausrc_channels\t1",
            "audio_level\tno",
            f"rtp_ports\t{rtp_start}-{rtp_start + 99}",
            "rtcp_mux\tno",
            "jitter_buffer_delay\t1-5",
            "module_path\t/usr/lib/baresip/modules",
            "module\tg711.so",
            "module\taufile.so",
            "module\taubridge.so",
            "module_tmp\taccount.so",
            "module_app\tmenu.so",
            "module_app\tctrl_tcp.so",
            f"ctrl_tcp_listen\t127.0.0.1:{ctrl_port}",
            "ringback_disabled\tyes",
            "statmode_default\toff",
            "menu_bell\tno",
            "",
        ]
    )


# regint=0: never REGISTER; pubint=0, mwi=no: no PUBLISH/SUBSCRIBE; PCMU only.
ACCOUNT = (
    "<sip:softphone@127.0.0.1>;regint=0;pubint=0;mwi=no;call_transfer=no;"
    "audio_codecs=pcmu;answermode=manual\n"
)


@dataclass
class Softphone:
    """One baresip process and its control connection."""

    workdir: Path
    proc: subprocess.Popen[bytes] | None = None
    sip_port: int = 0
    ctrl_port: int = 0
    events: list[PhoneEvent] = field(default_factory=list)
    _responses: dict[str, dict[str, Any]] = field(default_factory=dict)
    _sock: socket.socket | None = None
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _tokens: count[int] = field(default_factory=count)

    @property
    def log_path(self) -> Path:
        return self.workdir / "baresip.log"

    def start(self, rtp_start: int = 10000, timeout: float = 15.0) -> None:
        """Write the config, start baresip and connect to its control socket."""
        baresip = require_tool("baresip", "baresip")
        config_dir = self.workdir / "baresip"
        config_dir.mkdir(parents=True, exist_ok=True)
        microphone = write_silence(self.workdir / "microphone.wav", 90.0)
        self.sip_port = free_port()
        self.ctrl_port = free_port()
        while self.ctrl_port in (self.sip_port, self.sip_port + 1):  # baresip also takes SIP port + 1
            self.ctrl_port = free_port()
        (config_dir / "config").write_text(
            baresip_config(self.sip_port, self.ctrl_port, rtp_start, microphone)
        )
        (config_dir / "accounts").write_text(ACCOUNT)
        (config_dir / "contacts").write_text("")
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [baresip, "-f", str(config_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env={**os.environ, "HOME": str(self.workdir)},
            )
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise AssertionError(f"baresip exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self._sock = socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1.0)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise AssertionError("baresip's ctrl_tcp never listened:\n" + self.log_tail()) from None
                time.sleep(0.05)
        self._sock.settimeout(None)
        threading.Thread(target=self._read, args=(self._sock,), daemon=True).start()

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return ""
        text = self.log_path.read_text(errors="replace").replace("\r", "\n")
        return "\n".join([line for line in text.splitlines() if line.strip()][-lines:])

    # -- the control socket -----------------------------------------------------------
    def _read(self, sock: socket.socket) -> None:
        """Split the stream into netstrings (``LEN:JSON,``) and file them as events or replies."""
        buffer = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if not chunk:
                with self._cond:
                    self._cond.notify_all()
                return
            buffer += chunk
            while b":" in buffer:
                size_text, rest = buffer.split(b":", 1)
                size = int(size_text)
                if len(rest) < size + 1:
                    break
                message: dict[str, Any] = json.loads(rest[:size])
                buffer = rest[size + 1 :]
                with self._cond:
                    if message.get("event"):
                        self.events.append(
                            PhoneEvent(
                                str(message.get("type", "")),
                                str(message.get("id", "")),
                                str(message.get("param", "")),
                                time.monotonic(),
                            )
                        )
                    elif message.get("response"):
                        self._responses[str(message.get("token"))] = message
                    self._cond.notify_all()

    def command(self, name: str, params: str | None = None, timeout: float = 5.0) -> dict[str, Any]:
        """Run one menu command (``dial``, ``hangup``, ``sndcode``...) and return baresip's reply."""
        assert self._sock is not None, "start() first"
        token = f"t{next(self._tokens)}"
        message: dict[str, str] = {"command": name, "token": token}
        if params is not None:
            message["params"] = params
        payload = json.dumps(message).encode()
        self._sock.sendall(str(len(payload)).encode() + b":" + payload + b",")
        with self._cond:
            if not self._cond.wait_for(lambda: token in self._responses, timeout):
                raise AssertionError(f"baresip did not answer {name!r} within {timeout}s:\n{self.log_tail()}")
            return self._responses.pop(token)

    def dial(self, uri: str) -> None:
        reply = self.command("dial", uri)
        assert reply.get("ok"), reply

    def hangup(self) -> None:
        """What the red button does; with no call up it does nothing (and must not break)."""
        self.command("hangup")

    def send_digits(self, digits: str) -> None:
        """Key digits: baresip sends them as RFC 2833 telephone-events, as negotiated."""
        reply = self.command("sndcode", digits)
        assert reply.get("ok"), reply

    def mark(self) -> int:
        """Where the event list ends now: pass to :meth:`wait_event` to see only later events."""
        with self._cond:
            return len(self.events)

    def wait_event(
        self, types: Collection[str], *, since: int = 0, call_id: str | None = None, timeout: float = 10.0
    ) -> PhoneEvent | None:
        """The first event of one of ``types`` (for ``call_id`` if given) after ``since``, or None."""

        def find() -> PhoneEvent | None:
            for event in self.events[since:]:
                if event.type in types and (call_id is None or event.call_id == call_id):
                    return event
            return None

        with self._cond:
            self._cond.wait_for(lambda: find() is not None or not self.alive(), timeout)
            return find()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """Ask baresip to quit (SIGTERM is its normal shutdown); kill it if it hangs."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def present_number(phone: Softphone, number: str) -> str:
    """Make a started ``phone`` place its next calls as ``number`` (the From user part, e.g.
    ``+12025550123``), for an IVR that looks the caller up by number. Returns the new AOR.

    baresip adds a second account over ``ctrl_tcp`` (``uanew``, same settings as
    :data:`ACCOUNT`) and makes it the current one (``uafind``), which ``dial`` and ``sndcode`` use.
    """
    aor = f"sip:{number}@127.0.0.1"
    account = ACCOUNT.strip().replace("sip:softphone@127.0.0.1", aor, 1)
    reply = phone.command("uanew", account)
    assert reply.get("ok"), f"uanew {account!r}: {reply}\n{phone.log_tail()}"
    reply = phone.command("uafind", aor)
    assert reply.get("ok"), f"uafind {aor!r}: {reply}\n{phone.log_tail()}"
    return aor
