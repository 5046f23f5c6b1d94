"""Long-lived synthesis processes (:mod:`media.tts_worker`) shared by a process's renders.

pyttsx3 and espeak-ng run outside the call process, so synthesis never holds the call
process's GIL, and they stay loaded, so a render costs its synthesis only. Up to
``max_workers`` renders run at once; a worker that dies or times out is killed and replaced
on the next render, so one bad prompt costs that prompt, never the rest.
"""

from __future__ import annotations

import contextlib
import json
import queue
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path

from config.errors import MediaError

_PROJECT_ROOT = Path(__file__).resolve().parent.parent


class _Worker:
    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "media.tts_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
            cwd=_PROJECT_ROOT,
        )
        self.served = 0

    def alive(self) -> bool:
        return self.process.poll() is None

    def request(self, payload: dict[str, object], timeout: float) -> dict[str, object]:
        """Send one request and wait for its reply line; MediaError on death or timeout."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(json.dumps(payload) + "\n")
            stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise MediaError(f"TTS worker is gone ({exc})") from None
        with selectors.DefaultSelector() as selector:
            selector.register(stdout, selectors.EVENT_READ)
            if not selector.select(timeout):
                raise MediaError(f"TTS render timed out after {timeout:.0f} s")
        line = stdout.readline()
        if not line:
            raise MediaError(f"TTS worker exited (status {self.process.wait()})")
        reply: dict[str, object] = json.loads(line)
        if reply.get("id") != payload["id"]:
            raise MediaError(f"TTS worker answered request {reply.get('id')!r}, not {payload['id']!r}")
        self.served += 1
        return reply

    def stop(self, timeout: float = 5.0) -> None:
        if not self.alive():
            return
        with contextlib.suppress(OSError, ValueError):
            assert self.process.stdin is not None
            self.process.stdin.write("\n")
            self.process.stdin.close()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        with contextlib.suppress(OSError):
            self.process.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(5)


class SynthPool:
    """Hands renders to idle workers; starts workers on demand up to ``max_workers``."""

    def __init__(self, max_workers: int = 2) -> None:
        if max_workers < 1:
            raise MediaError(f"TTS workers: {max_workers} is not at least 1")
        self.max_workers = max_workers
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._count = 0
        self._lock = threading.Lock()
        self._next_id = 0
        self._closed = False
        self.started = 0
        """Worker processes started so far (tests and benchmarks read it)."""

    def warm(self) -> None:
        """Start one worker ahead of need, so the first render does not wait for start-up."""
        with self._lock:
            if self._count or self._closed:
                return
            self._count += 1
            self.started += 1
        self._idle.put(_Worker())

    def render(self, voice: str, rate: int, text: str, path: Path, timeout: float) -> None:
        """Have a worker write ``text`` as a WAV at ``path``; MediaError when it cannot."""
        worker = self._take(timeout)
        with self._lock:
            self._next_id += 1
            ident = self._next_id
        payload: dict[str, object] = {
            "id": ident,
            "voice": voice,
            "rate": rate,
            "path": str(path),
            "text": text,
        }
        try:
            reply = worker.request(payload, timeout)
        except (MediaError, ValueError):
            self._discard(worker)
            raise
        self._give_back(worker)
        if "error" in reply:
            raise MediaError(f"TTS render failed (voice {voice!r}, rate {rate}): {reply['error']}")

    def _take(self, timeout: float) -> _Worker:
        deadline = time.monotonic() + timeout
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                with self._lock:
                    if self._closed:
                        raise MediaError("TTS is shut down") from None
                    spawn = self._count < self.max_workers
                    if spawn:
                        self._count += 1
                        self.started += 1
                if spawn:
                    return _Worker()
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise MediaError(f"no TTS worker free within {timeout:.0f} s") from None
                try:
                    worker = self._idle.get(timeout=remaining)
                except queue.Empty:
                    continue
            if worker.alive():
                return worker
            self._discard(worker)

    def _give_back(self, worker: _Worker) -> None:
        with self._lock:
            closed = self._closed
        if closed:
            self._discard(worker)
        else:
            self._idle.put(worker)

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            self._count -= 1

    def close(self) -> None:
        """Stop every idle worker; busy ones stop when their render returns."""
        with self._lock:
            self._closed = True
        while True:
            try:
                worker = self._idle.get_nowait()
            except queue.Empty:
                return
            worker.stop()
            with self._lock:
                self._count -= 1
