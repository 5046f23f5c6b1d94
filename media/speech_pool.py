"""The speech service: a pool of :mod:`media.speech_worker` processes, started and supervised.

``serve`` starts one pool (one worker per core by default, ``media.speech_workers``) and every
call process of the machine, the ``serve --workers`` processes included, decodes in it through
:class:`~media.asr.remote.RemoteAsrEngine`: models load once per worker, and no decoder runs in
a process that carries calls. The pool lives in a private directory (0700) holding one Unix
socket per worker and the connection key (0600); a call process finds it through
``media.speech_service_dir``. A worker that dies is logged and started again on its socket.

Each worker also listens on an offline socket (``offline-N.sock``) for work that may wait:
:meth:`SpeechPool.offline_engine` and ``connect(..., offline=True)`` give an engine whose
requests a worker serves only when no live request waits (:mod:`media.speech_worker`), so a
QA batch re-transcribing recordings shares the pool without slowing a live call.
"""

from __future__ import annotations

import logging
import os
import secrets
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from config.errors import MediaError
from config.logs import log_event
from config.settings import MediaSettings
from media.asr.remote import RemoteAsrEngine

_log = logging.getLogger("media.speech")
_KEY_FILE = "key"
_READY_TIMEOUT_S = 60.0
_RESTART_DELAY_S = 1.0
PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class _Worker:
    index: int
    socket: Path
    offline_socket: Path
    proc: subprocess.Popen[str] | None = None
    restarts: int = 0


class SpeechPool:
    """See the module docstring. :meth:`start` blocks until every worker is ready."""

    def __init__(self, settings: MediaSettings, workers: int, log_level: str = "info") -> None:
        if workers < 1:
            raise MediaError(f"media.speech_workers: {workers} must be at least 1 to start a speech pool")
        self.settings = settings
        self.directory = Path(tempfile.mkdtemp(prefix="ivr-speech-"))  # 0700, short enough for AF_UNIX
        self._key = secrets.token_bytes(32)
        key_file = self.directory / _KEY_FILE
        key_file.touch(mode=0o600)
        key_file.write_text(self._key.hex())
        self._workers = [
            _Worker(n, self.directory / f"worker-{n}.sock", self.directory / f"offline-{n}.sock")
            for n in range(workers)
        ]
        self._log_level = log_level
        self._stopping = threading.Event()

    @property
    def addresses(self) -> list[str]:
        return [str(w.socket) for w in self._workers]

    @property
    def offline_addresses(self) -> list[str]:
        return [str(w.offline_socket) for w in self._workers]

    def engine(self) -> RemoteAsrEngine:
        return RemoteAsrEngine(self.addresses, self._key)

    def offline_engine(self) -> RemoteAsrEngine:
        """Streams served only when no live request waits (batch work)."""
        return RemoteAsrEngine(self.offline_addresses, self._key)

    def start(self) -> None:
        for worker in self._workers:
            self._spawn(worker)
        for worker in self._workers:
            self._wait_ready(worker)
            threading.Thread(
                target=self._supervise, args=(worker,), name=f"speech-{worker.index}", daemon=True
            ).start()
        log_event("speech.pool_ready", logger=_log, workers=len(self._workers), directory=str(self.directory))

    def _spawn(self, worker: _Worker) -> None:
        worker.socket.unlink(missing_ok=True)
        worker.offline_socket.unlink(missing_ok=True)
        s = self.settings
        worker.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "media.speech_worker",
                "--socket",
                str(worker.socket),
                "--offline-socket",
                str(worker.offline_socket),
                "--engine",
                s.asr_engine,
                "--vosk-model-dir",
                s.vosk_model_dir,
                "--log-level",
                self._log_level,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        assert worker.proc.stdin is not None
        worker.proc.stdin.write(self._key.hex() + "\n")
        worker.proc.stdin.close()

    def _wait_ready(self, worker: _Worker) -> None:
        proc = worker.proc
        assert proc is not None and proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], _READY_TIMEOUT_S)
        line = proc.stdout.readline() if ready else ""  # "ready", or "" if it died loading the model
        if line.strip() != "ready":
            if proc.poll() is None:  # hung while loading: do not leave it running
                proc.kill()
                proc.wait()
            code = proc.poll()
            raise MediaError(
                f"speech worker {worker.index} did not start (exit code {code}); see its log lines above"
            )

    def _supervise(self, worker: _Worker) -> None:
        while not self._stopping.is_set():
            proc = worker.proc
            assert proc is not None
            code = proc.wait()
            if self._stopping.is_set():
                return
            log_event("speech.worker_died", logging.ERROR, _log, worker=worker.index, exit_code=code)
            time.sleep(_RESTART_DELAY_S * min(8, 2**worker.restarts))
            worker.restarts += 1
            try:
                self._spawn(worker)
                self._wait_ready(worker)
            except (MediaError, OSError) as exc:
                log_event(
                    "speech.worker_restart_failed", logging.ERROR, _log, worker=worker.index, error=str(exc)
                )
                continue
            log_event("speech.worker_restarted", logger=_log, worker=worker.index, restarts=worker.restarts)

    def stop(self) -> None:
        self._stopping.set()
        for worker in self._workers:
            if worker.proc is not None and worker.proc.poll() is None:
                worker.proc.terminate()
        for worker in self._workers:
            if worker.proc is not None:
                try:
                    worker.proc.wait(5)
                except subprocess.TimeoutExpired:
                    worker.proc.kill()
                    worker.proc.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def connect(directory: str | Path, *, offline: bool = False) -> RemoteAsrEngine:
    """The engine of a pool another process started (``media.speech_service_dir``); ``offline``:
    its low-priority sockets, for batch work."""
    path = Path(directory)
    try:
        key = bytes.fromhex((path / _KEY_FILE).read_text().strip())
    except (OSError, ValueError) as exc:
        raise MediaError(f"media.speech_service_dir {path}: no readable speech service key ({exc})") from None
    sockets = sorted(str(p) for p in path.glob("offline-*.sock" if offline else "worker-*.sock"))
    if not sockets:
        raise MediaError(f"media.speech_service_dir {path}: no worker sockets")
    return RemoteAsrEngine(sockets, key)


def default_workers() -> int:
    return max(1, os.cpu_count() or 1)
