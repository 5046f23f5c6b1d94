"""The HTTP intake application: ``POST /v1/campaigns/{name}/contacts`` and ``GET /v1/health``.

Checks run cheapest first, so a stranger costs little: the client's rate (429), the bearer
token (401), the content type (415), the size (413, from ``Content-Length`` before reading
and while reading a chunked body), the time taken to send the body (408), then JSON and the
row checks (400, 422) and the database (404, 409, 201, 200, 503). A refusal given before the
body is read closes the connection. No token, header or number is ever logged.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from config.logs import log_event
from dialer.intake import add_contact
from dialer.intake_answers import IntakeAnswer, IntakeStatus, OnAdded, answer, label
from dialer.intake_auth import IntakeConfigError, authorized
from dialer.intake_log import LOG, internal_error, log_answer, notify
from dialer.intake_rate import RateLimiter
from dialer.intake_request import decode_request
from dialer.models import utcnow

BODY_TIMEOUT_S = 10.0
DRAIN_BYTES = 1024 * 1024
"""An authenticated body over the limit but under this is read (and dropped) before the 413."""
HEALTH_TIMEOUT_S = 5.0
_NO_STORE = {"Cache-Control": "no-store"}
_HTTP_ERRORS = {404: "not_found", 405: "method_not_allowed"}


@dataclass(frozen=True)
class _Intake:
    engine: Engine
    tokens: tuple[bytes, ...]
    max_body_bytes: int
    limiter: RateLimiter
    on_added: OnAdded | None
    clock: Callable[[], datetime]
    monotonic: Callable[[], float]


def create_app(
    engine: Engine,
    tokens: Sequence[bytes],
    *,
    max_body_bytes: int = 16384,
    requests_per_s: float = 20.0,
    burst: int = 100,
    on_added: OnAdded | None = None,
    clock: Callable[[], datetime] = utcnow,
    monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The intake application (any ASGI server runs it; :class:`dialer.intake_server.IntakeHttpServer`
    is uvicorn)."""
    if not tokens:
        raise IntakeConfigError("HTTP intake needs a token: set IVR_INTAKE__TOKEN or intake.token_file")
    ctx = _Intake(
        engine, tuple(tokens), max_body_bytes, RateLimiter(requests_per_s, burst), on_added, clock, monotonic
    )

    async def add(request: Request) -> Response:
        client = _client(request)
        campaign = request.path_params.get("name", "")
        try:
            return await _add(ctx, request, client, campaign)
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        except Exception as exc:  # a bug must cost one request, with a clear answer, not the server
            return _json(internal_error(exc, source="http", client=client))

    async def health(request: Request) -> Response:
        wait = ctx.limiter.check(_client(request), ctx.monotonic())
        if wait:
            return _rate_limited(wait)
        try:
            async with asyncio.timeout(HEALTH_TIMEOUT_S):
                await asyncio.to_thread(_ping, ctx.engine)
        except Exception as exc:
            log_event("intake.health_failed", logging.WARNING, LOG, error=type(exc).__name__)
            return JSONResponse({"status": "unavailable", "database": "down"}, 503, headers=_NO_STORE)
        return JSONResponse({"status": "ok", "database": "up"}, headers=_NO_STORE)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        status = _HTTP_ERRORS.get(exc.status_code, "error")
        body = {"status": status, "message": str(exc.detail).lower()}
        return JSONResponse(body, exc.status_code, headers={**_NO_STORE, **(exc.headers or {})})

    return Starlette(
        routes=[
            Route("/v1/campaigns/{name}/contacts", add, methods=["POST"]),
            Route("/v1/health", health, methods=["GET"]),
        ],
        exception_handlers={HTTPException: http_error},
    )


async def _add(ctx: _Intake, request: Request, client: str, campaign: str) -> Response:
    wait = ctx.limiter.check(client, ctx.monotonic())
    if wait:
        log_event("intake.rate_limited", logging.INFO, LOG, client=client)
        return _rate_limited(wait)
    header = request.headers.get("authorization")
    if not authorized(header, ctx.tokens):
        log_event("intake.unauthorized", logging.WARNING, LOG, client=client, token_sent=header is not None)
        challenge = 'Bearer realm="ivr-intake"' + (', error="invalid_token"' if header else "")
        result = answer(IntakeStatus.UNAUTHORIZED, "a valid 'Authorization: Bearer TOKEN' header is required")
        return _refused_unread(result, {"WWW-Authenticate": challenge})
    if not _is_json(request.headers.get("content-type")):
        shown = label(request.headers.get("content-type") or "none", 60)
        body: bytes | IntakeAnswer = answer(
            IntakeStatus.UNSUPPORTED_MEDIA_TYPE, f"send application/json (UTF-8), not {shown}"
        )
    else:
        body = await _read_body(request, ctx.max_body_bytes)
    if isinstance(body, IntakeAnswer):
        log_answer(body, source="http", campaign=campaign, client=client)
        return _refused_unread(body)
    decoded = decode_request(body)
    if isinstance(decoded, IntakeAnswer):
        result = decoded
    else:
        result = await asyncio.to_thread(
            add_contact, ctx.engine, campaign, decoded, source="http", now=ctx.clock()
        )
        notify(ctx.on_added, result, "http")
    log_answer(result, source="http", campaign=campaign, client=client)
    return _json(result, {"Retry-After": "5"} if result.status is IntakeStatus.UNAVAILABLE else None)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return False
    media, *params = (part.strip().lower() for part in content_type.split(";"))
    if media != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        if name.strip() == "charset" and value.strip().strip('"') not in ("utf-8", "utf8"):
            return False
    return True


async def _read_body(request: Request, limit: int) -> bytes | IntakeAnswer:
    """The body, or why not: over ``limit`` (413; up to :data:`DRAIN_BYTES` of it is read and
    dropped first, so the client can read the answer instead of a reset connection), slower
    than :data:`BODY_TIMEOUT_S` (408)."""
    too_large = answer(IntakeStatus.TOO_LARGE, f"the body is larger than {limit:,} bytes; nothing stored")
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.strip().isdigit():
            return answer(IntakeStatus.MALFORMED, "Content-Length is not a number")
        if int(declared) > DRAIN_BYTES:
            return too_large
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(BODY_TIMEOUT_S):
            async for chunk in request.stream():
                size += len(chunk)
                if size > DRAIN_BYTES:
                    return too_large
                if size <= limit:
                    chunks.append(chunk)
    except TimeoutError:
        return answer(
            IntakeStatus.REQUEST_TIMEOUT, f"the body took longer than {BODY_TIMEOUT_S:g} s to arrive"
        )
    return too_large if size > limit else b"".join(chunks)


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _json(result: IntakeAnswer, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        result.body(), status_code=result.http_status, headers={**_NO_STORE, **(headers or {})}
    )


def _refused_unread(result: IntakeAnswer, headers: dict[str, str] | None = None) -> JSONResponse:
    """An answer given before the body was read: the connection is closed after it, so a
    stranger's unread body costs nothing and no client reuses a connection mid-request."""
    return _json(result, {**(headers or {}), "Connection": "close"})


def _rate_limited(wait: float) -> Response:
    result = answer(IntakeStatus.RATE_LIMITED, f"too many requests from this address; retry in {wait:.1f} s")
    return _refused_unread(result, {"Retry-After": str(max(1, math.ceil(wait)))})
