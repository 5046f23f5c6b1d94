"""The flow admin's pages: the flows with their versions, a flow's graph (vendored Mermaid), its
YAML in an editor whose problems are shown at their line on save, publishing (validated, kept
with its history, hot-reloaded by ``serve``), diffs, one-click rollback, and its conversation
tests run from the page.

``flows.view`` reads; only ``flows.publish`` saves, publishes or rolls back. Publishing goes
through :class:`flows.versions.FlowVersions`, which logs every publish and rollback with the
user's name and never lets an invalid text reach the served file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from console.flow_files import (
    ConversationRun,
    FlowState,
    flow_names,
    flow_path,
    flow_state,
    run_tests,
    versions_of,
)
from console.web import context_of, render, require
from flows.errors import FlowValidationError, Problem
from flows.versions import MAX_FLOW_BYTES, FlowHistoryError, FlowVersions


def list_view(request: Request) -> Response:
    require(request, "flows.view")
    context = context_of(request)
    rows = []
    for name in flow_names(context):
        versions = versions_of(context, name)
        state = flow_state(versions.served)
        rows.append({"state": state, "latest": versions.latest(), "count": len(versions.versions())})
    return render(request, "flows/list.html", rows=rows, flows_dir=str(context.flows_dir))


def _page(
    request: Request,
    name: str,
    *,
    text: str | None = None,
    problems: list[Problem] | None = None,
    tests: ConversationRun | None = None,
    status_code: int = 200,
    message: str = "",
) -> Response:
    """The flow page; ``text`` and ``problems`` when a save was refused (the admin's text kept)."""
    context = context_of(request)
    versions = versions_of(context, name)
    state: FlowState = flow_state(versions.served)
    shown = text if text is not None else versions.served.read_text(encoding="utf-8")
    lines = shown.splitlines()
    marked: list[dict[str, Any]] = [
        {
            "line": p.line,
            "col": p.col,
            "message": p.message,
            "warning": p.is_warning,
            "source": lines[p.line - 1] if 0 < p.line <= len(lines) else "",
            "here": p.file == str(versions.served),
        }
        for p in (problems if problems is not None else state.problems)
    ]
    history = list(reversed(versions.versions()))
    return render(
        request,
        "flows/flow.html",
        status_code=status_code,
        name=name,
        state=state,
        text=shown,
        problems=marked,
        refused=problems is not None and any(not p["warning"] for p in marked),
        history=history,
        tests=tests,
        message=message or _notice(request),
        max_bytes=MAX_FLOW_BYTES,
    )


def _notice(request: Request) -> str:
    done = request.query_params.get("done", "")
    version = request.query_params.get("version", "")
    if done in ("published", "rolled back") and version.isdigit():
        return f"Version {version} {done}: serve uses it for new calls."
    return ""


def flow_view(request: Request) -> Response:
    require(request, "flows.view")
    return _page(request, request.path_params["name"])


async def publish(request: Request) -> Response:
    """Save = validate, then publish; a refused text comes back in the editor with its problems."""
    user = require(request, "flows.publish")
    name = request.path_params["name"]
    versions = versions_of(context_of(request), name)
    form = await request.form()
    text = form.get("text")
    if not isinstance(text, str):
        raise HTTPException(400, "the form has no flow text (field 'text')")
    text = text.replace("\r\n", "\n")
    try:
        version = await run_in_threadpool(versions.publish, text, user.name, datetime.now(UTC))
    except FlowValidationError as exc:
        return await run_in_threadpool(
            _page, request, name, text=text, problems=exc.problems, status_code=400
        )
    except FlowHistoryError as exc:
        return await run_in_threadpool(
            _page, request, name, text=text, problems=[], status_code=409, message=str(exc)
        )
    return RedirectResponse(f"/flows/{name}?done=published&version={version.number}", status_code=303)


async def check(request: Request) -> Response:
    """Validate without publishing (``flows.edit``): the problems at their lines, or none."""
    require(request, "flows.edit")
    name = request.path_params["name"]
    versions = versions_of(context_of(request), name)
    form = await request.form()
    text = form.get("text")
    if not isinstance(text, str):
        raise HTTPException(400, "the form has no flow text (field 'text')")
    text = text.replace("\r\n", "\n")
    problems = await run_in_threadpool(versions.check, text)
    message = "" if problems else "No problems: this text can be published."
    return await run_in_threadpool(_page, request, name, text=text, problems=problems, message=message)


async def rollback(request: Request) -> Response:
    user = require(request, "flows.publish")
    name = request.path_params["name"]
    versions = versions_of(context_of(request), name)
    form = await request.form()
    raw = form.get("version")
    if not isinstance(raw, str) or not raw.isdigit():
        raise HTTPException(400, "give the version to roll back to (field 'version')")
    try:
        version = await run_in_threadpool(versions.rollback, int(raw), user.name, datetime.now(UTC))
    except FlowHistoryError as exc:
        raise HTTPException(404, str(exc)) from exc
    except FlowValidationError as exc:  # an old text that no longer loads (an include changed)
        old = versions.text(int(raw))
        return await run_in_threadpool(_page, request, name, text=old, problems=exc.problems, status_code=400)
    return RedirectResponse(f"/flows/{name}?done=rolled+back&version={version.number}", status_code=303)


def diff_view(request: Request) -> Response:
    require(request, "flows.view")
    name = request.path_params["name"]
    versions: FlowVersions = versions_of(context_of(request), name)
    try:
        old, new = int(request.query_params.get("from", "")), int(request.query_params.get("to", ""))
        lines = versions.diff(old, new)
    except ValueError as exc:
        raise HTTPException(400, "give two version numbers: ?from=N&to=M") from exc
    except FlowHistoryError as exc:
        raise HTTPException(404, str(exc)) from exc
    return render(request, "flows/diff.html", name=name, old=old, new=new, lines=lines)


async def tests_view(request: Request) -> Response:
    require(request, "flows.view")
    name = request.path_params["name"]
    served = flow_path(context_of(request), name)
    run = await run_in_threadpool(run_tests, context_of(request), served)
    return await run_in_threadpool(_page, request, name, tests=run)


def routes() -> list[BaseRoute]:
    return [
        Route("/flows", list_view, name="flows"),
        Route("/flows/{name}", flow_view, name="flow"),
        Route("/flows/{name}/publish", publish, methods=["POST"], name="flow_publish"),
        Route("/flows/{name}/check", check, methods=["POST"], name="flow_check"),
        Route("/flows/{name}/rollback", rollback, methods=["POST"], name="flow_rollback"),
        Route("/flows/{name}/diff", diff_view, name="flow_diff"),
        Route("/flows/{name}/tests", tests_view, methods=["POST"], name="flow_tests"),
    ]
