"""The HTTP intake server: uvicorn on a socket bound here, inside the dialer's event loop.

The socket is bound before uvicorn starts, so "address in use" is an error at start rather
than a log line, and uvicorn's own signal handling is off: the dialer that runs the server
owns SIGINT/SIGTERM and stops it with :meth:`IntakeHttpServer.aclose`. ``X-Forwarded-For``
is not trusted: the rate limit applies to the connecting address (behind a proxy, the proxy's).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import socket
import ssl
from collections.abc import Generator
from typing import Any

import uvicorn

from config.logs import log_event
from dialer.intake_auth import IntakeConfigError
from dialer.intake_log import LOG


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the dialer running this owns SIGINT/SIGTERM and calls aclose()


class IntakeHttpServer:
    """uvicorn serving ``app`` on ``host:port`` (0: a free port, see :attr:`port`) in this loop."""

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        certfile: str = "",
        keyfile: str = "",
        reuse_port: bool = False,
        limit_concurrency: int = 64,
    ) -> None:
        self.host = host
        self.requested_port = port
        self.tls = bool(certfile)
        self._reuse_port = reuse_port
        self._config = uvicorn.Config(
            app,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            ws="none",
            proxy_headers=False,
            server_header=False,
            limit_concurrency=limit_concurrency,
            timeout_keep_alive=5,
            timeout_graceful_shutdown=5,
            ssl_certfile=certfile or None,
            ssl_keyfile=keyfile or None,
        )
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None
        self._port = port

    @property
    def port(self) -> int:
        """The port listened on (the one picked when 0 was asked for)."""
        return self._port

    async def start(self) -> None:
        """Listen, or raise :class:`IntakeConfigError` (port taken, certificate unreadable)."""
        try:
            self._config.load()
        except (OSError, ssl.SSLError) as exc:
            raise IntakeConfigError(
                f"intake.tls_cert_file / tls_key_file: cannot load the certificate: {exc}"
            ) from None
        self._socket = _listen(self.host, self.requested_port, self._reuse_port)
        self._port = int(self._socket.getsockname()[1])
        self._server = _Server(self._config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]), name="intake-http")
        try:
            while not self._server.started:
                if self._task.done():
                    self._task.result()  # raises what stopped it
                    raise IntakeConfigError(
                        f"intake: the HTTP server on {self.host}:{self.port} did not start"
                    )
                await asyncio.sleep(0.01)
        except BaseException:
            await self.aclose()
            raise
        log_event(
            "intake.http_listening",
            logger=LOG,
            address=self.host,
            port=self.port,
            scheme="https" if self.tls else "http",
            pid=os.getpid(),
        )
        if not self.tls and not _loopback(self.host):
            log_event(
                "intake.http_plaintext",
                logging.WARNING,
                LOG,
                address=self.host,
                advice="tokens cross the network in clear: set intake.tls_cert_file or use a TLS proxy",
            )

    async def aclose(self) -> None:
        server, task = self._server, self._task
        self._task = None
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(task), timeout=10)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        finally:
            if self._socket is not None:
                self._socket.close()
        log_event("intake.http_stopped", logger=LOG, port=self.port)


def _listen(host: str, port: int, reuse_port: bool) -> socket.socket:
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise IntakeConfigError(
            f"intake: cannot listen on {host}:{port}: {exc.strerror or exc}"
            " (intake.bind_address, intake.http_port)"
        ) from None
    sock.set_inheritable(False)
    return sock


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"
