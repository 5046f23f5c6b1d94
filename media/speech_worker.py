"""A speech worker process: one recognizer model, many streams, served over a Unix socket.

Started by :class:`~media.speech_pool.SpeechPool` as ``python -m media.speech_worker``; call
processes connect with :class:`~media.asr.remote.RemoteAsrEngine`. Decoding runs here, so a
grammar search that holds the GIL for 200 ms stalls this process only, never a call's audio.
The worker is single-threaded after start-up: requests from every connection are served in
arrival order, which also keeps each stream's work in order.
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
    def __init__(self, settings: MediaSettings, socket_path: Path, authkey: bytes) -> None:
        self.engine = create_asr_engine(settings)
        self.listener = Listener(str(socket_path), family="AF_UNIX", authkey=authkey)
        os.chmod(socket_path, 0o600)
        self.connections: list[Connection] = []
        self.streams: dict[tuple[int, int], AsrStream] = {}
        self._new: list[Connection] = []
        self._lock = threading.Lock()

    def accept_forever(self) -> None:
        while True:
            try:
                conn = self.listener.accept()
            except (OSError, EOFError) as exc:  # a client that failed the handshake
                log_event("speech.accept_failed", logging.WARNING, _log, error=repr(exc))
                continue
            with self._lock:
                self._new.append(conn)

    def run(self, parent_pid: int) -> None:
        threading.Thread(target=self.accept_forever, name="speech-accept", daemon=True).start()
        while os.getppid() == parent_pid:  # the pool's owner died (even by SIGKILL): go too
            with self._lock:
                self.connections += self._new
                self._new.clear()
            ready = wait(self.connections, timeout=0.05) if self.connections else []
            if not self.connections:
                threading.Event().wait(0.05)
            for conn in ready:
                assert isinstance(conn, Connection)
                try:
                    data = conn.recv_bytes()
                except (EOFError, OSError):
                    self._drop(conn)
                    continue
                self._serve(conn, data)

    def _drop(self, conn: Connection) -> None:
        self.connections.remove(conn)
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
    parser.add_argument("--engine", default="pocketsphinx")
    parser.add_argument("--vosk-model-dir", default="")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    configure(args.log_level)
    enable_crash_tracebacks()
    authkey = bytes.fromhex(sys.stdin.readline().strip())
    settings = MediaSettings(asr_engine=args.engine, vosk_model_dir=args.vosk_model_dir)
    server = _Server(settings, args.socket, authkey)
    log_event("speech.worker_ready", logger=_log, pid=os.getpid(), engine=server.engine.name)
    print("ready", flush=True)  # the pool waits for this line on stdout
    server.run(os.getppid())
    log_event("speech.worker_orphaned", logging.WARNING, _log, pid=os.getpid())
    shutil.rmtree(args.socket.parent, ignore_errors=True)  # nobody is left to clean up the pool
    return 0


if __name__ == "__main__":
    sys.exit(main())
