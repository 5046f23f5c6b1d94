"""Speech recognition in the speech service's worker processes, behind the usual interfaces.

:class:`RemoteAsrEngine` is an :class:`AsrEngine` whose streams decode in a
:mod:`media.speech_worker` process: audio goes out as raw PCM over a Unix socket and the call
process only waits (GIL released) for a final result at the end of an utterance. One
connection per worker per call process, shared by every stream through a lock; a reader
thread routes replies to their streams.

A worker that dies fails the utterances it held (:class:`~config.errors.MediaError`, which the
call turns into a no-match and a reprompt, never a hung call); the stream moves to a live
worker for the next utterance. The pool restarts the dead worker.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import queue
import threading
from collections import deque
from multiprocessing.connection import Client, Connection
from pathlib import Path

from config.errors import MediaError
from config.logs import log_event
from media.asr import wire
from media.asr.base import AsrEngine, AsrResult, AsrStream, Expectation, FinalResult
from media.asr.wire import Op
from media.frames import Frame

_log = logging.getLogger("media.speech")
FLUSH_TIMEOUT_S = 10.0
_WORKER_DIED = "speech worker connection lost"


class _WorkerLink:
    """One connection to one worker, shared by this process's streams on it."""

    def __init__(self, address: str, authkey: bytes) -> None:
        self.address = address
        self.conn: Connection = Client(address, family="AF_UNIX", authkey=authkey)
        self._send_lock = threading.Lock()
        self.finals: dict[int, queue.SimpleQueue[wire.Message]] = {}
        self.partials: dict[int, deque[AsrResult]] = {}
        self.alive = True
        self.closing = False
        self.streams = 0
        threading.Thread(target=self._read, name=f"speech-link-{Path(address).stem}", daemon=True).start()

    def send(self, op: Op, stream: int, payload: bytes = b"") -> None:
        if not self.alive:
            raise MediaError(_WORKER_DIED)
        try:
            with self._send_lock:
                self.conn.send_bytes(wire.encode(op, stream, payload))
        except OSError as exc:
            self._lost(repr(exc))
            raise MediaError(_WORKER_DIED) from exc

    def _read(self) -> None:
        while True:
            try:
                message = wire.decode(self.conn.recv_bytes())
            except (EOFError, OSError) as exc:
                self._lost(repr(exc))
                return
            except MediaError as exc:
                log_event("speech.bad_reply", logging.WARNING, _log, error=str(exc))
                continue
            if message.op is Op.PARTIALS:
                try:
                    self.partials.setdefault(message.stream, deque()).extend(
                        wire.payload_partials(message.payload)
                    )
                except MediaError as exc:
                    log_event("speech.bad_reply", logging.WARNING, _log, error=str(exc))
            else:
                self.finals.setdefault(message.stream, queue.SimpleQueue()).put(message)

    def close(self) -> None:
        self.closing = True
        self.alive = False
        self.conn.close()

    def _lost(self, why: str) -> None:
        if not self.alive:
            return
        self.alive = False
        if not self.closing:
            log_event("speech.worker_lost", logging.ERROR, _log, worker=Path(self.address).stem, error=why)
        for waiting in list(self.finals.values()):  # wake every flush waiting on this worker
            waiting.put(wire.Message(Op.FAILED, 0, _WORKER_DIED.encode()))


class RemoteAsrEngine(AsrEngine):
    """Streams decode in the speech service's workers at ``addresses`` (Unix sockets)."""

    name = "speech-service"

    def __init__(self, addresses: list[str], authkey: bytes) -> None:
        if not addresses:
            raise MediaError("the speech service has no worker addresses")
        self._addresses = addresses
        self._authkey = authkey
        self._links: dict[str, _WorkerLink] = {}
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def open_stream(self, expectation: Expectation) -> AsrStream:
        return RemoteAsrStream(self, next(self._ids), expectation)

    def close(self) -> None:
        """This process is done with the service (a shutdown, not a lost worker)."""
        with self._lock:
            for link in self._links.values():
                link.close()
            self._links.clear()

    def link(self) -> _WorkerLink:
        """The live worker with the fewest streams from this process (reconnecting as needed)."""
        with self._lock:
            candidates: list[_WorkerLink] = []
            for address in self._addresses:
                link = self._links.get(address)
                if link is None or not link.alive:
                    try:
                        link = self._links[address] = _WorkerLink(address, self._authkey)
                    except OSError as exc:  # restarting, or gone: try the others
                        log_event(
                            "speech.connect_failed",
                            logging.WARNING,
                            _log,
                            worker=Path(address).stem,
                            error=repr(exc),
                        )
                        continue
                candidates.append(link)
            if not candidates:
                raise MediaError(f"no speech worker is reachable ({len(self._addresses)} configured)")
            return min(candidates, key=lambda lk: lk.streams)


class RemoteAsrStream(AsrStream):
    """An :class:`AsrStream` whose decoder runs in a speech worker."""

    def __init__(self, engine: RemoteAsrEngine, stream_id: int, expectation: Expectation) -> None:
        self._engine = engine
        self._id = stream_id
        self._expectation = expectation
        self._link: _WorkerLink | None = None

    def _attached(self) -> _WorkerLink:
        link = self._link
        if link is not None and link.alive:
            return link
        if link is not None:  # its worker died: this utterance is lost, the next one moves
            link.streams -= 1
            self._link = None
            raise MediaError(_WORKER_DIED)
        link = self._engine.link()
        link.send(Op.OPEN, self._id, wire.expectation_payload(self._expectation))
        link.streams += 1
        self._link = link
        return link

    def push_frame(self, frame: Frame) -> list[AsrResult]:
        return self.push_frames([frame])

    def push_frames(self, frames: list[Frame]) -> list[AsrResult]:
        link = self._attached()
        link.send(Op.FEED, self._id, wire.frames_payload(frames))
        pending = link.partials.get(self._id)
        out: list[AsrResult] = []
        while pending:
            out.append(pending.popleft())
        return out

    def flush(self) -> FinalResult:
        reply = self._ask(Op.FLUSH)
        self._drop_partials()
        if reply.op is Op.FINAL:
            return wire.payload_final(reply.payload)
        raise MediaError(reply.payload.decode(errors="replace") or "speech worker failed")

    def prepare(self, silence_ms: int, pad_ms: int) -> None:
        self._attached().send(Op.PREPARE, self._id, wire.prepare_payload(silence_ms, pad_ms))

    def complete_phrase(self) -> FinalResult | None:
        reply = self._ask(Op.CHECK)
        if reply.op is Op.INCOMPLETE:
            return None
        self._drop_partials()
        if reply.op is Op.FINAL:
            return wire.payload_final(reply.payload)
        raise MediaError(reply.payload.decode(errors="replace") or "speech worker failed")

    def _ask(self, op: Op) -> wire.Message:
        """Send ``op`` and wait for the worker's answer (FINAL, INCOMPLETE or FAILED)."""
        link = self._attached()
        replies = link.finals.setdefault(self._id, queue.SimpleQueue())
        link.send(op, self._id)
        try:
            return replies.get(timeout=FLUSH_TIMEOUT_S)
        except queue.Empty:
            raise MediaError(f"speech worker gave no answer within {FLUSH_TIMEOUT_S:.0f} s") from None

    def _drop_partials(self) -> None:
        if self._link is not None:
            self._link.partials.pop(self._id, None)

    def reset(self) -> None:
        if self._link is not None and self._link.alive:
            self._link.send(Op.RESET, self._id)
            self._link.partials.pop(self._id, None)

    def set_expectation(self, expectation: Expectation) -> None:
        self._expectation = expectation
        if self._link is not None and self._link.alive:
            self._link.send(Op.EXPECT, self._id, wire.expectation_payload(expectation))

    def close(self) -> None:
        link, self._link = self._link, None
        if link is not None and link.alive:
            link.streams -= 1
            link.finals.pop(self._id, None)
            link.partials.pop(self._id, None)
            with contextlib.suppress(MediaError):
                link.send(Op.CLOSE, self._id)
