"""What the recordings pages do with the auditor's workbench, without any HTML: who is asking
(for the access log), the search form turned into checked filters and a page of results, one
call found and read, its verification status, and its export bundle.

Every read goes through :func:`audit` first; if the access log cannot take the row the page
refuses (503), exactly as the ``recordings`` CLI does: no access without a trace.
"""

from __future__ import annotations

import os
import pwd
import socket
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

from console.recording_verify import Verification, verify_entry
from console.web import ConsoleContext, User
from recordings.access_log import Accessor, record_access
from recordings.bundle import check_call, export_bundle
from recordings.call_search import IndexedCall, SearchFilters, find_call, search
from recordings.catalog import Catalog, CatalogEntry
from recordings.database import IndexDatabaseError
from recordings.errors import RecordingError, SidecarError
from recordings.numbers import load_number_key, number_key_path
from recordings.qa_file import qa_path_for, read_qa_file
from recordings.sidecar import check_call_id
from recordings.signing import TrustedKey, load_trusted_key, public_key_path

PAGE_SIZE = 50
FORM_FIELDS = ("number", "from", "to", "outcome", "flow", "campaign", "says", "speaker", "qa")


def accessor(request: Request, user: User) -> Accessor:
    """The console user as the access log names them, with the browser's address."""
    try:
        os_user = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        os_user = f"uid {os.geteuid()}"
    remote = request.client.host if request.client else ""
    return Accessor(user.name, os_user, socket.gethostname()[:255], "console", remote[:200], os.getpid())


def audit(
    context: ConsoleContext,
    request: Request,
    user: User,
    action: str,
    call_ids: list[str],
    *,
    detail: Mapping[str, Any] | None = None,
) -> None:
    """One access-log row, or 503 and nothing shown."""
    try:
        record_access(
            context.index_engine,
            accessor(request, user),
            action,
            call_ids,
            detail={"via": "console", **(detail or {})},
        )
    except IndexDatabaseError as exc:
        raise HTTPException(503, f"the access log cannot be written, so nothing is shown: {exc}") from exc


@dataclass
class SearchPage:
    """The form as typed, the calls of this page, and where the next page starts."""

    form: dict[str, str]
    calls: tuple[IndexedCall, ...] = ()
    next_query: dict[str, str] | None = None
    error: str = ""
    filters: dict[str, Any] = field(default_factory=dict)


def _day(text: str, name: str) -> datetime:
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        raise RecordingError(f"{name} {text!r}: give a date as YYYY-MM-DD") from None


def search_filters(context: ConsoleContext, form: Mapping[str, str]) -> SearchFilters:
    """The form's filters, checked; a :class:`RecordingError` names the field and what to type."""
    digests: tuple[str, ...] = ()
    if form.get("number"):
        key = load_number_key(number_key_path(context.settings))
        digests = key.search_digests(form["number"], context.settings.directory.region)
        if not digests:
            raise RecordingError(f"number {form['number']!r}: no digits to search for")
    start = _day(form["from"], "from") if form.get("from") else None
    before = _day(form["to"], "to") + timedelta(days=1) if form.get("to") else None
    if start is not None and before is not None and before <= start:
        raise RecordingError(f"from {form['from']} is after to {form['to']}: no call can match")
    filters = SearchFilters(
        number_digests=digests,
        started_from=start,
        started_before=before,
        outcome=form.get("outcome") or None,
        flow=form.get("flow") or None,
        campaign=form.get("campaign") or None,
        says=form.get("says") or None,
        speaker=(form.get("speaker") or None) if form.get("says") else None,
        qa=form.get("qa") or None,
    )
    filters.check()
    return filters


def search_page(context: ConsoleContext, query: Mapping[str, str]) -> SearchPage:
    """One page of matching calls, newest first.

    Paging is by position in time, not by offset (an offset walks 100,000 rows): the next page
    asks for calls that started no later than the last one shown, skipping the ones already
    shown at that same instant (``before`` and ``skip`` in the link).
    """
    form = {name: str(query.get(name, "")).strip()[:200] for name in FORM_FIELDS}
    page = SearchPage(form)
    try:
        filters = search_filters(context, form)
        skip = 0
        if query.get("before"):
            cursor = datetime.fromisoformat(str(query["before"]))
            cursor = cursor.replace(tzinfo=UTC) if cursor.tzinfo is None else cursor
            skip = max(0, min(int(query.get("skip") or 0), 10 * PAGE_SIZE))
            edge = cursor + timedelta(microseconds=1)
            if filters.started_before is None or edge < filters.started_before:
                filters = SearchFilters(**{**filters.__dict__, "started_before": edge})
        result = search(context.index_engine, filters, PAGE_SIZE + skip)
    except (RecordingError, ValueError) as exc:
        page.error = str(exc)
        return page
    page.calls = result.calls[skip:]
    page.filters = filters.describe()
    if result.more and page.calls:
        last = page.calls[-1].started_at
        same = sum(1 for call in result.calls if call.started_at == last)
        page.next_query = {
            **{k: v for k, v in form.items() if v},
            "before": last.isoformat(),
            "skip": str(same),
        }
    return page


def find_entry(context: ConsoleContext, call_id: str) -> tuple[CatalogEntry, IndexedCall | None]:
    """The call's recording and index row; 404 for an id that names no call (or no file)."""
    try:
        check_call_id(call_id)
        indexed = find_call(context.index_engine, call_id)
        catalog = Catalog(context.recordings_root)
        if indexed is not None:
            path = context.recordings_root / indexed.sidecar_path
            if path.exists():
                return catalog.entry(path), indexed
        return catalog.find(call_id), indexed
    except SidecarError as exc:
        raise HTTPException(409, f"call {call_id}: its sidecar cannot be read: {exc}") from exc
    except RecordingError as exc:
        raise HTTPException(404, f"no recording of call {call_id}") from exc


def service_key(context: ConsoleContext) -> TrustedKey | None:
    """The public half of the key that seals the manifests; ``None`` if nothing was ever sealed."""
    key_file = context.settings.recordings_signing_key_path
    for path in (public_key_path(key_file), key_file):
        if path.exists():
            return load_trusted_key(path)
    return None


def verify(context: ConsoleContext, entry: CatalogEntry) -> Verification:
    """What ``recordings verify CALL_ID`` says of this call (see :mod:`console.recording_verify`)."""
    return verify_entry(context.recordings_root, entry, service_key(context))


def qa_details(entry: CatalogEntry) -> list[dict[str, Any]]:
    """The rules of the call's QA file (each with its status, detail and times), if judged."""
    path = qa_path_for(entry.sidecar_path)
    if not path.exists():
        return []
    try:
        results = read_qa_file(path).get("results")
    except RecordingError:
        return []
    return [item for item in results if isinstance(item, dict)] if isinstance(results, list) else []


def bundle_file(
    context: ConsoleContext, request: Request, user: User, entry: CatalogEntry
) -> tuple[Path, Path]:
    """The regulator bundle of one call in a private temp folder (the caller deletes the
    folder); the access row is written just before the zip is committed."""
    key = service_key(context)
    if key is None:
        raise HTTPException(409, "no signing key: nothing was ever sealed here, so nothing can be exported")
    try:
        checked = check_call(entry.sidecar_path, key)
    except RecordingError as exc:
        raise HTTPException(409, f"cannot export: {exc}") from exc
    folder = Path(tempfile.mkdtemp(prefix="ivr-console-bundle-"))
    out = folder / f"{entry.call_id}.zip"
    try:
        export_bundle(
            [checked],
            key,
            out,
            exported_by=user.name,
            before_commit=lambda: audit(
                context, request, user, "export", [entry.call_id], detail={"out": out.name}
            ),
        )
    except BaseException:
        remove_folder(folder)
        raise
    return folder, out


def remove_folder(folder: Path) -> None:
    for child in folder.iterdir():
        child.unlink(missing_ok=True)
    folder.rmdir()
