"""A speech worker process: one recognizer model, many streams, served over a Unix socket.

Started by :class:`~media.speech_pool.SpeechPool` as ``python -m media.speech_worker``; call
processes connect with :class:`~media.asr.remote.RemoteAsrEngine`. Decoding runs here, so a
grammar search that holds the GIL for 200 ms stalls this process only, never a call's audio.
The worker is single-threaded after start-up: requests are served one message at a time,
which keeps each stream's work in order.

Two sockets, two priorities. Live calls connect to ``--socket``; offline work (batch QA
re-transcription) connects to ``--offline-socket``. Before each offline message the worker
checks the live connections again and serves everything live that waits first, so an offline
batch can delay a live utterance by at most one offline message (the offline client keeps its
messages short: about half a second of audio each). A reserved share of workers would idle
while no batch runs and cut the live capacity of a 1-2 worker machine; strict priority lets a
batch use the pool at night and step aside by day.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import threading
from multiprocessing.connection import Connection, Listener, wait
from pathlib import Path

from config.errors import IvrError, MediaError
from config.logs import configure, enable_crash_tracebacks, log_event
from config.settings import MediaSettings
from media.asr import wire
from media.asr.base import AsrStream
from media.asr.factory import create_asr_engine
from media.asr.wire import Op

_log = logging.getLogger("media.speech")


class _Server:
    def __init__(
        self, settings: MediaSettings, socket_path: Path, authkey: bytes, offline_path: Path | None = None
    ) -> None:
        self.engine = create_asr_engine(settings)
        self.listeners = [(Listener(str(socket_path), family="AF_UNIX", authkey=authkey), False)]
        os.chmod(socket_path, 0o600)
        if offline_path is not None:
            self.listeners.append((Listener(str(offline_path), family="AF_UNIX", authkey=authkey), True))
            os.chmod(offline_path, 0o600)
        self.connections: list[Connection] = []
        self.offline: list[Connection] = []
        self.streams: dict[tuple[int, int], AsrStream] = {}
        self._new: list[tuple[Connection, bool]] = []
        self._lock = threading.Lock()
        self._turn = 0  # round robin over the offline connections

    def accept_forever(self, listener: Listener, offline: bool) -> None:
        while True:
            try:
                conn = listener.accept()
            except (OSError, EOFError) as exc:  # a client that failed the handshake
                log_event("speech.accept_failed", logging.WARNING, _log, error=repr(exc))
                continue
            with self._lock:
                self._new.append((conn, offline))

    def run(self, parent_pid: int) -> None:
        for listener, offline in self.listeners:
            name = "speech-accept-offline" if offline else "speech-accept"
            threading.Thread(
                target=self.accept_forever, args=(listener, offline), name=name, daemon=True
            ).start()
        while os.getppid() == parent_pid:  # the pool's owner died (even by SIGKILL): go too
            with self._lock:
                for conn, offline in self._new:
                    (self.offline if offline else self.connections).append(conn)
                self._new.clear()
            everyone = self.connections + self.offline
            if not everyone:
                threading.Event().wait(0.05)
                continue
            ready = wait(everyone, timeout=0.05)
            live = [conn for conn in ready if conn in self.connections]
            if live:
                for conn in live:
                    assert isinstance(conn, Connection)
                    self._receive(conn)
                continue  # look at the live connections again before any offline message
            if ready:  # only offline work waits: one message, then live goes first again
                self._turn += 1
                chosen = ready[self._turn % len(ready)]
                assert isinstance(chosen, Connection)
                self._receive(chosen)

    def _receive(self, conn: Connection) -> None:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):
            self._drop(conn)
            return
        self._serve(conn, data)

    def _drop(self, conn: Connection) -> None:
        (self.offline if conn in self.offline else self.connections).remove(conn)
        for key in [k for k in self.streams if k[0] == id(conn)]:
            self.streams.pop(key).close()
        conn.close()

    def _serve(self, conn: Connection, data: bytes) -> None:
        try:
            message = wire.decode(data)
        except MediaError as exc:
            log_event("speech.bad_message", logging.WARNING, _log, error=str(exc))
            return
        key = (id(conn), message.stream)
        try:
            reply = self._handle(key, message)
        except IvrError as exc:
            reply = wire.encode(Op.FAILED, message.stream, str(exc).encode())
            log_event(
                "speech.stream_failed", logging.WARNING, _log, op=message.op.name, error=type(exc).__name__
            )
        if reply is not None:
            try:
                conn.send_bytes(reply)
            except OSError:
                self._drop(conn)

    def _handle(self, key: tuple[int, int], message: wire.Message) -> bytes | None:
        op, stream_id = message.op, message.stream
        if op is Op.OPEN:
            old = self.streams.pop(key, None)
            if old is not None:
                old.close()
            self.streams[key] = self.engine.open_stream(wire.payload_expectation(message.payload))
            return None
        stream = self.streams.get(key)
        if stream is None:
            raise MediaError(f"speech stream {stream_id} is not open on this worker")
        if op is Op.EXPECT:
            stream.set_expectation(wire.payload_expectation(message.payload))
        elif op is Op.FEED:
            results = stream.push_frames(wire.payload_frames(message.payload))
            if results:
                return wire.encode(Op.PARTIALS, stream_id, wire.partials_payload(results))
        elif op is Op.FLUSH:
            return wire.encode(Op.FINAL, stream_id, wire.final_payload(stream.flush()))
        elif op is Op.CHECK:
            result = stream.complete_phrase()
            if result is None:
                return wire.encode(Op.INCOMPLETE, stream_id)
            return wire.encode(Op.FINAL, stream_id, wire.final_payload(result))
        elif op is Op.PREPARE:
            stream.prepare(*wire.payload_prepare(message.payload))
        elif op is Op.RESET:
            stream.reset()
        elif op is Op.CLOSE:
            self.streams.pop(key).close()
        else:
            raise MediaError(f"speech worker got a reply op {op.name} as a request")
        return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="speech worker process (started by serve)")
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--offline-socket", type=Path, help="served only when no live request waits")
    parser.add_argument("--engine", default="pocketsphinx")
    parser.add_argument("--vosk-model-dir", default="")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    configure(args.log_level)
    enable_crash_tracebacks()
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    settings = MediaSettings(asr_engine=args.engine, vosk_model_dir=args.vosk_model_dir)
    server = _Server(settings, args.socket, authkey, args.offline_socket)
    log_event("speech.worker_ready", logger=_log, pid=os.getpid(), engine=server.engine.name)
    print("ready", flush=True)  # the pool waits for this line on stdout
    server.run(os.getppid())
    log_event("speech.worker_orphaned", logging.WARNING, _log, pid=os.getpid())
    shutil.rmtree(args.socket.parent, ignore_errors=True)  # nobody is left to clean up the pool
    return 0


if __name__ == "__main__":
    sys.exit(main())
