"""A campaign's live wallboard: the page, and server-sent events that replace the board
whenever its numbers change (the browser's EventSource reconnects by itself).

Each stream re-checks the viewer's permission on every round, so a disabled account or a
logged-out session stops receiving data, and ends after ``STREAM_S`` (the browser reconnects).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from console.wallboard import Board, BoardCache, read_board
from console.web import context_of, render, require, templates
from dialer.db import CampaignNotFoundError
from dialer.models import utcnow

STREAM_S = 300.0
HEARTBEAT_S = 15.0


def board_cache(request: Request) -> BoardCache[Board]:
    """The app's one board cache (made on first use)."""
    state = request.app.state
    cache: BoardCache[Board] | None = getattr(state, "boards", None)
    if cache is None:
        cache = state.boards = BoardCache[Board](context_of(request).refresh_s)
    return cache


async def _board(request: Request, name: str) -> Board:
    engine = context_of(request).engine
    cache = board_cache(request)
    try:
        return await run_in_threadpool(cache.get, name, lambda: read_board(engine, name, utcnow()))
    except CampaignNotFoundError:
        raise HTTPException(404, "no such campaign") from None


def board_html(board: Board) -> str:
    return str(templates.env.get_template("campaigns/_board.html").render(board=board, status=board.status))


async def campaign_page(request: Request) -> Response:
    require(request, "campaigns.view")
    name = request.path_params["name"]
    board = await _board(request, name)
    return render(request, "campaigns/wallboard.html", name=name, board=board, status=board.status)


async def board_fragment(request: Request) -> Response:
    require(request, "campaigns.view")
    board = await _board(request, request.path_params["name"])
    return HTMLResponse(board_html(board))


def sse_message(event: str, data: str) -> str:
    """One server-sent event; every line of ``data`` gets its own ``data:`` field."""
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"event: {event}\n{lines}\n"


async def board_events(request: Request) -> Response:
    require(request, "campaigns.view")
    context = context_of(request)
    name = request.path_params["name"]
    await _board(request, name)  # 404 before the stream starts

    async def stream() -> AsyncIterator[str]:
        started = last_sent = time.monotonic()
        previous = ""
        yield "retry: 2000\n\n"
        while time.monotonic() - started < STREAM_S:
            if await request.is_disconnected():
                return
            request.scope.pop("console.user", None)  # look the user up afresh each round
            try:
                require(request, "campaigns.view")
                html = board_html(await _board(request, name))
            except HTTPException as exc:
                yield sse_message("gone", str(exc.detail))
                return
            if html != previous:
                previous = html
                last_sent = time.monotonic()
                yield sse_message("board", html)
            elif time.monotonic() - last_sent > HEARTBEAT_S:
                last_sent = time.monotonic()
                yield ": still here\n\n"
            await asyncio.sleep(max(context.refresh_s, 0.5))

    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


def routes() -> list[BaseRoute]:
    return [
        Route("/campaigns/{name}", campaign_page, methods=["GET"], name="campaign"),
        Route("/campaigns/{name}/board", board_fragment, methods=["GET"], name="campaign_board"),
        Route("/campaigns/{name}/events", board_events, methods=["GET"], name="campaign_events"),
    ]
