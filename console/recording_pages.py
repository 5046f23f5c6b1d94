"""The auditor's pages: search the call index, open a call (stereo player with two waveform
lanes, per-speaker transcript, pauses, QA, verification), stream its audio, export its bundle.

``recordings.search`` lists calls; everything that shows what was said or lets it be heard
(the call page, its audio, its bundle) needs ``recordings.play``. Each view and each fetch is
one row in the access log, written before anything is sent (:mod:`console.recording_access`).
Numbers are shown masked, as ``recordings show`` shows them; sensitive digits were redacted
before the sidecar was written.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Route

from console.recording_access import (
    audit,
    bundle_file,
    find_entry,
    qa_details,
    remove_folder,
    search_page,
    verify,
)
from console.recording_transcript import timeline
from console.waveform import Waveform, WaveformError, lane_path, wav_peaks
from console.web import context_of, render, require
from recordings.call_search import QA_FILTERS, SPEAKERS
from recordings.numbers import remote_party

LANE_HEIGHT = 40.0
LANES = (("caller", "left"), ("bot", "right"))


def search_view(request: Request) -> Response:
    user = require(request, "recordings.search")
    context = context_of(request)
    page = search_page(context, request.query_params)
    if not page.error:
        audit(context, request, user, "search", [c.call_id for c in page.calls], detail=page.filters)
    rows = [
        {
            "call": call,
            "number": call.remote_masked or "-",
            "duration": "-" if call.duration_s is None else f"{call.duration_s:.1f} s",
            "qa": "" if call.qa is None else call.qa.describe(),
        }
        for call in page.calls
    ]
    return render(
        request,
        "recordings/search.html",
        status_code=400 if page.error else 200,
        form=page.form,
        rows=rows,
        error=page.error,
        next_link=None if page.next_query is None else "/recordings?" + urlencode(page.next_query),
        speakers=SPEAKERS,
        qa_choices=QA_FILTERS,
        searched=any(page.form.values()),
    )


def call_view(request: Request) -> Response:
    user = require(request, "recordings.play")
    context = context_of(request)
    call_id = request.path_params["call_id"]
    entry, indexed = find_entry(context, call_id)
    audit(context, request, user, "show", [entry.call_id], detail={"page": "call"})
    sidecar = entry.sidecar
    lanes: list[dict[str, Any]] = []
    waveform_error = ""
    duration = sidecar.duration_s or 0.0
    try:
        shape = _peaks(entry.wav_path)
        duration = shape.duration_s or duration
        for (speaker, side), peaks in zip(LANES, shape.lanes, strict=False):
            lanes.append(
                {"speaker": speaker, "side": side, "path": lane_path(peaks, LANE_HEIGHT), "width": len(peaks)}
            )
    except WaveformError as exc:
        waveform_error = str(exc)
    pauses = [
        {
            "left": 100 * p.start_s / duration if duration else 0,
            "width": 100 * ((p.end_s if p.end_s is not None else duration) - p.start_s) / duration
            if duration
            else 0,
            "reason": p.reason,
        }
        for p in sidecar.pauses
    ]
    return render(
        request,
        "recordings/call.html",
        entry=entry,
        sidecar=sidecar,
        indexed=indexed,
        number=remote_party(sidecar.direction, sidecar.from_masked, sidecar.to_masked) or "-",
        duration=duration,
        lanes=lanes,
        lane_height=LANE_HEIGHT,
        waveform_error=waveform_error,
        pauses=pauses,
        items=timeline(sidecar.turns, sidecar.pauses),
        qa=None if indexed is None else indexed.qa,
        qa_rules=qa_details(entry),
        verification=verify(context, entry),
    )


def _peaks(path: Path) -> Waveform:
    """The lanes of ``path``, computed once per version of the file (an hour-long call is
    ~115 MB to read; auditors reopen the same calls)."""
    try:
        info = path.stat()
    except OSError as exc:
        raise WaveformError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return _cached_peaks(str(path), info.st_mtime_ns, info.st_size)


@functools.lru_cache(maxsize=64)
def _cached_peaks(path: str, mtime_ns: int, size: int) -> Waveform:
    del mtime_ns, size  # the cache key: a changed file is read again
    return wav_peaks(Path(path))


def audio(request: Request) -> Response:
    """The stereo WAV; ``Range`` requests are answered with ``206`` so the player can seek."""
    user = require(request, "recordings.play")
    context = context_of(request)
    entry, _ = find_entry(context, request.path_params["call_id"])
    audit(
        context,
        request,
        user,
        "play",
        [entry.call_id],
        detail={"range": request.headers.get("range", "")[:100]},
    )
    return FileResponse(
        entry.wav_path,
        media_type="audio/wav",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def bundle(request: Request) -> Response:
    """The regulator bundle of this call (``recordings export --call``), checked against its seal."""
    user = require(request, "recordings.play")
    context = context_of(request)
    entry, _ = find_entry(context, request.path_params["call_id"])
    folder, path = bundle_file(context, request, user, entry)
    return FileResponse(
        path,
        media_type="application/zip",
        filename=path.name,
        headers={"Cache-Control": "no-store"},
        background=BackgroundTask(remove_folder, folder),
    )


def routes() -> list[BaseRoute]:
    return [
        Route("/recordings", search_view, name="recordings"),
        Route("/recordings/{call_id}", call_view, name="recording"),
        Route("/recordings/{call_id}/audio", audio, name="recording_audio"),
        Route("/recordings/{call_id}/bundle.zip", bundle, name="recording_bundle"),
    ]
