"""Kamailio as a child process: the configuration rendered into a private dir, checked, run.

The rendered files go into a fresh 0700 directory (``mkdtemp``), written 0600, because they
name every node of the deployment; the directory goes when Kamailio stops. ``kamailio -c``
checks the configuration before it runs, so a broken one is an error at start, naming
Kamailio's own complaint, not a balancer that silently routes nothing.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from config.errors import ConfigError
from config.logs import log_event
from ivr.balancer_config import BalancerPlan, render

_log = logging.getLogger("ivr.balancer")
_KAMAILIO_PATHS = ("/usr/sbin/kamailio", "/usr/local/sbin/kamailio")
_SHM_MB = 64
_CHECK_TIMEOUT_S = 30.0


def _die_with_parent(argv: list[str]) -> list[str]:
    """``argv`` run so that the child gets SIGTERM when this process dies, even by SIGKILL, and
    no orphaned Kamailio keeps the SIP port: util-linux ``setpriv --pdeathsig`` sets Linux's
    ``PR_SET_PDEATHSIG`` and execs the command in place (same pid)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--", *argv] if setpriv else argv


def find_kamailio() -> str | None:
    """The kamailio binary (``$PATH``, then Debian's /usr/sbin), or None when not installed."""
    found = shutil.which("kamailio")
    if found:
        return found
    return next((path for path in _KAMAILIO_PATHS if os.access(path, os.X_OK)), None)


class KamailioProcess:
    """One Kamailio in the foreground (``-DD -E``) for a :class:`BalancerPlan`."""

    def __init__(self, plan: BalancerPlan, on_line: Callable[[str], None] | None = None) -> None:
        binary = find_kamailio()
        if binary is None:
            raise ConfigError(
                "kamailio is not installed (Debian: apt-get install kamailio); "
                "`serve --workers N` can use its 302 front instead: balancer.front: redirect"
            )
        self.binary = binary
        self.plan = plan
        self._on_line = on_line
        self.dir = Path(tempfile.mkdtemp(prefix="ivr-balancer-"))
        self.cfg_path = self.dir / "kamailio.cfg"
        self.proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _write(self, path: Path, text: str) -> None:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)

    def prepare(self) -> None:
        """Render and check the configuration (raises ConfigError with Kamailio's complaint)."""
        os.chmod(self.dir, 0o700)
        rendered = render(self.plan, self.dir.resolve())
        self._write(self.dir / "dispatcher.list", rendered.dispatcher_list)
        self._write(self.cfg_path, rendered.cfg)
        check = subprocess.run(
            [self.binary, "-c", "-f", str(self.cfg_path)],
            capture_output=True,
            text=True,
            timeout=_CHECK_TIMEOUT_S,
            check=False,
        )
        if check.returncode != 0:
            problems = [line for line in check.stderr.splitlines() if "ERROR" in line or "CRITICAL" in line]
            raise ConfigError(
                f"kamailio rejected {self.cfg_path}: " + ("\n".join(problems[-5:]) or check.stderr[-800:])
            )

    def start(self) -> None:
        """Run Kamailio in the foreground; its log lines go to ``on_line`` (else to stderr)."""
        self.prepare()
        argv = [self.binary, "-DD", "-E", "-m", str(_SHM_MB), "-f", str(self.cfg_path)]
        piped = self._on_line is not None
        self.proc = subprocess.Popen(
            _die_with_parent(argv),
            stdout=subprocess.PIPE if piped else None,
            stderr=subprocess.STDOUT if piped else None,
            text=True,
            start_new_session=True,  # a Ctrl-C reaches us, and we stop Kamailio in order
        )
        if piped and self.proc.stdout is not None:
            stream, sink = self.proc.stdout, self._on_line
            assert sink is not None
            self._reader = threading.Thread(
                target=lambda: [sink(line.rstrip("\n")) for line in iter(stream.readline, "")],
                name="kamailio-log",
                daemon=True,
            )
            self._reader.start()
        log_event(
            "balancer.started",
            logger=_log,
            pid=self.proc.pid,
            listen=str(self.plan.listen),
            nodes=",".join(str(node) for node in self.plan.nodes),
            algorithm=self.plan.algorithm,
            probe_interval_s=self.plan.probe_interval_s,
        )

    def signal(self, signum: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signum)

    def wait(self, timeout: float | None = None) -> int:
        assert self.proc is not None
        code = self.proc.wait(timeout)
        if self._reader is not None:
            self._reader.join(2.0)
        return code

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, then SIGKILL after ``timeout``; removes the rendered files. Returns the exit code."""
        code = 0
        if self.proc is not None:
            self.signal(signal.SIGTERM)
            try:
                code = self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = self.wait()
            log_event("balancer.stopped", logger=_log, pid=self.proc.pid, exit_code=code)
        shutil.rmtree(self.dir, ignore_errors=True)
        return code


class KamailioFront:
    """Kamailio as the front of ``serve --workers N`` (in place of the 302 redirecting agent).

    A drain changes nothing here: each worker drains itself, answers OPTIONS and INVITEs with
    503 and leaves the dispatcher's set, while Kamailio keeps relaying the ACKs and BYEs of the
    calls still live. Kamailio dying unexpectedly stops the whole ``serve`` (SIGTERM to this
    process: every worker hangs up politely) so its supervisor restarts it whole.
    """

    def __init__(self, plan: BalancerPlan) -> None:
        self._kamailio = KamailioProcess(plan, on_line=self._log_line)
        self.bound_port = plan.listen.port
        self._stopping = threading.Event()

    @staticmethod
    def _log_line(line: str) -> None:
        if "ERROR" in line or "CRITICAL" in line:
            log_event("balancer.kamailio_error", logging.WARNING, _log, line=line[-300:])
        elif "balancer:" in line:
            log_event("balancer.kamailio", logger=_log, line=line[line.index("balancer:") :][:300])

    def start(self, _loop: object = None) -> None:
        self._kamailio.start()
        threading.Thread(target=self._watch, name="kamailio-watch", daemon=True).start()

    def _watch(self) -> None:
        code = self._kamailio.wait()
        if not self._stopping.is_set():
            log_event("balancer.died", logging.CRITICAL, _log, exit_code=code)
            os.kill(os.getpid(), signal.SIGTERM)

    def drain(self) -> None:
        """Nothing to do: see the class docstring."""

    def stop(self) -> None:
        self._stopping.set()
        self._kamailio.stop()
