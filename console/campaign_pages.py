"""The campaign manager's pages: the campaign list, a new campaign from an uploaded call list
(rejected rows shown by row and field), start/pause/resume, and the CSV export.

Starting a campaign does what ``campaign start`` does: it marks the campaign running, and the
dialer workers (``run_ivr.py dial`` or ``serve --dial``) dial it from their next lease. Every
change and every export is an audit line (logger ``ivr.console.audit``) naming the user.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from config.errors import IvrError
from config.logs import log_event
from config.settings import PROJECT_ROOT
from console.campaign_form import FormError, parse_import_form
from console.wallboard_pages import board_cache
from console.web import ConsoleContext, context_of, render, require
from dialer.call_list_columns import COLUMNS, FLOW_FIELDS, required_columns
from dialer.campaign_admin import list_campaigns
from dialer.db import CampaignNotFoundError
from dialer.export import export_campaign
from dialer.importer import ImportReport, import_csv
from dialer.models import CampaignKind, CampaignState, MachinePolicy, utcnow
from dialer.store import DialerStore

AUDIT = logging.getLogger("ivr.console.audit")
REJECTS_SHOWN = 200
"""Rejects listed on the result page; all of them are in the rejects file."""
STATE_ACTIONS = {
    "start": CampaignState.RUNNING,
    "pause": CampaignState.PAUSED,
    "resume": CampaignState.RUNNING,
}
_SAFE_FILE = re.compile(r"[^A-Za-z0-9._-]+")


def flow_choices(context: ConsoleContext) -> tuple[str, ...]:
    """The flows a campaign may run: the YAML files of the flows folder, as ``campaign import``
    takes them (relative to the project when they live in it)."""
    found = []
    for path in sorted(context.flows_dir.glob("*.yaml")):
        try:
            found.append(str(path.resolve().relative_to(PROJECT_ROOT)))
        except ValueError:
            found.append(str(path.resolve()))
    return tuple(found)


def _form_values(context: ConsoleContext) -> dict[str, Any]:
    return {
        "columns": COLUMNS,
        "flow_fields": FLOW_FIELDS,
        "required": {kind.value: required_columns(kind.value) for kind in CampaignKind},
        "kinds": [kind.value for kind in CampaignKind],
        "machines": [m.value for m in MachinePolicy],
        "flows": flow_choices(context),
    }


async def campaigns_page(request: Request) -> Response:
    require(request, "campaigns.view")
    context = context_of(request)
    summaries = await run_in_threadpool(list_campaigns, context.engine)
    return render(request, "campaigns/list.html", campaigns=summaries, form={}, **_form_values(context))


def _save_upload(context: ConsoleContext, upload: UploadFile, data: bytes) -> Path:
    """The uploaded list, kept private under DATA_DIR/uploads (its rejects file goes beside it)."""
    folder = context.settings.data_path / "uploads"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    stem = _SAFE_FILE.sub("_", Path(upload.filename or "list.csv").name)[:80] or "list.csv"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"{stamp}-", suffix=f"-{stem}", dir=folder)
    with os.fdopen(fd, "wb") as out:  # mkstemp makes it 0600
        out.write(data)
    return Path(name)


async def import_list(request: Request) -> Response:
    user = require(request, "campaigns.run")
    context = context_of(request)
    form = await request.form()
    values = {key: str(value) for key, value in form.items() if isinstance(value, str)}
    upload = form.get("file")
    problem: str | None = None
    report: ImportReport | None = None
    try:
        wanted = parse_import_form(values, flow_choices(context))
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise FormError("file", "choose a CSV call list to upload")
        path = _save_upload(context, upload, await upload.read())
        report = await run_in_threadpool(
            lambda: import_csv(
                context.engine,
                wanted.name,
                path,
                wanted.spec,
                now=utcnow(),
                column_map=wanted.column_map,
                rejects_fallback_dir=context.settings.data_path,
            )
        )
    except FormError as exc:
        problem = str(exc)
    except IvrError as exc:
        problem = str(exc).replace(str(context.settings.data_path), "DATA_DIR")
    finally:
        await form.close()
    if report is None:
        summaries = await run_in_threadpool(list_campaigns, context.engine)
        return render(
            request,
            "campaigns/list.html",
            status_code=400,
            campaigns=summaries,
            form=values,
            problem=problem,
            **_form_values(context),
        )
    log_event(
        "console.campaign_imported",
        logger=AUDIT,
        user=user.name,
        campaign=report.campaign,
        rows=report.rows,
        imported=report.imported,
        rejected=report.rejected_rows,
    )
    by_field = Counter(r.field for r in report.rejects).most_common()
    return render(
        request,
        "campaigns/imported.html",
        status_code=200,
        report=report,
        rejects=report.rejects[:REJECTS_SHOWN],
        by_field=by_field,
    )


async def change_state(request: Request) -> Response:
    user = require(request, "campaigns.run")
    context = context_of(request)
    name = request.path_params["name"]
    action = request.path_params["action"]
    target = STATE_ACTIONS.get(action)
    if target is None:
        raise HTTPException(404, f"no campaign action {action!r}")
    try:
        previous = await run_in_threadpool(DialerStore(context.engine).set_state, name, target)
    except CampaignNotFoundError:
        raise HTTPException(404, "no such campaign") from None
    except IvrError as exc:
        raise HTTPException(409, str(exc)) from None
    board_cache(request).forget(name)
    log_event(
        "console.campaign_state",
        logger=AUDIT,
        user=user.name,
        campaign=name,
        before=previous.value,
        after=target.value,
    )
    return RedirectResponse(request.url_for("campaign", name=name), status_code=303)


async def export_csv(request: Request) -> Response:
    user = require(request, "campaigns.view")
    context = context_of(request)
    name = request.path_params["name"]
    fd, temp = tempfile.mkstemp(prefix="export-", suffix=".csv")
    path = Path(temp)

    def write() -> int:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            return export_campaign(context.engine, name, out)

    try:
        count = await run_in_threadpool(write)
    except CampaignNotFoundError:
        await run_in_threadpool(path.unlink, True)
        raise HTTPException(404, "no such campaign") from None
    except BaseException:
        await run_in_threadpool(path.unlink, True)
        raise
    log_event("console.campaign_exported", logger=AUDIT, user=user.name, campaign=name, contacts=count)
    filename = _SAFE_FILE.sub("_", name) + ".csv"
    return FileResponse(
        path, media_type="text/csv; charset=utf-8", filename=filename, background=BackgroundTask(path.unlink)
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/campaigns", campaigns_page, methods=["GET"], name="campaigns"),
        Route("/campaigns/import", import_list, methods=["POST"], name="campaign_import"),
        Route("/campaigns/{name}/export.csv", export_csv, methods=["GET"], name="campaign_export"),
        Route("/campaigns/{name}/{action}", change_state, methods=["POST"], name="campaign_state"),
    ]
