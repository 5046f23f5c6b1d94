"""QA over the archive: every sealed recording (or those since a date) judged by its rules file.

Each judged call gets ``<call>.qa.json`` next to its sidecar (:mod:`recordings.qa_file`). The
sealed sidecar and WAV are never touched, so ``recordings verify`` still proves them; the QA
file is *derived* data and names what it was derived from: the SHA-256 of the exact sidecar
bytes it judged (the manifest's ``sidecar_sha256``) and of the rules file. Re-running
``recordings qa`` with the same rules reproduces it, which is how an auditor checks it. The
call's index row takes its verdict (:func:`recordings.call_index.refresh_index`).

Rules are picked per call: ``--rules FILE`` for every call it applies to, or from a folder
(default :data:`DEFAULT_RULES_DIR`) the file whose ``applies_to`` names the call's campaign
(sidecar tag ``campaign``), else its flow, else a file that names neither.

With a :class:`~recordings.retranscribe.Retranscriber`, a track without a transcript (and the
caller's track when ``retranscribe`` is asked for) is decoded again from the WAV before the
call is judged (:mod:`recordings.retranscribe`); the QA file says which tracks gained turns.

At the end of a live call, after the recorder is closed: :func:`check_and_store`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from config.logs import log_event
from config.settings import DatabaseSettings
from recordings.call_index import refresh_index
from recordings.errors import RecordingError, SidecarError
from recordings.qa_check import QaResult, evaluate
from recordings.qa_file import qa_document, qa_path_for, write_qa_file
from recordings.qa_rules import RuleCatalog, RuleSet
from recordings.qa_transcript import QaInputError
from recordings.recovery import sidecar_files
from recordings.retranscribe import Retranscriber, caller_phrases, retranscribed
from recordings.sidecar import SIDECAR_SUFFIX, Sidecar, read_sidecar
from recordings.wav_writer import is_being_written

_LOG = logging.getLogger("ivr.recordings")
DEFAULT_RULES_DIR = Path(__file__).resolve().parents[1] / "flows" / "library" / "qa"
"""The rules shipped with the flows of ``flows/library``."""
CAMPAIGN_TAG = "campaign"
"""The sidecar tag naming the dialer campaign a call belongs to (matched by ``applies_to.campaigns``)."""


@dataclass(frozen=True)
class CallQa:
    """One recording the batch looked at: judged (``result``) or ``skipped`` with the reason."""

    sidecar_path: Path
    sidecar: Sidecar
    result: QaResult | None = None
    qa_path: Path | None = None
    """The ``.qa.json`` written (``None`` when not written)."""
    skipped: str = ""
    sidecar_sha256: str = ""
    retranscribed: dict[str, int] = field(default_factory=dict)
    """Turns each re-transcribed track gained (empty when none was)."""


@dataclass(frozen=True)
class BatchReport:
    calls: tuple[CallQa, ...]
    """Judged calls, oldest first."""
    skipped: tuple[CallQa, ...]
    errors: tuple[str, ...]
    """Sidecars that could not be read or judged, and QA files that could not be written."""

    def count(self, status: str) -> int:
        return sum(1 for call in self.calls if call.result is not None and call.result.status == status)

    @property
    def written(self) -> list[tuple[str, Path]]:
        """(call id, sidecar) of every call whose QA file was written: their index rows change."""
        return [(c.sidecar.call_id, c.sidecar_path) for c in self.calls if c.qa_path is not None]


def rules_for(rules: RuleSet | RuleCatalog, sidecar: Sidecar) -> tuple[RuleSet | None, str]:
    """The rules that judge ``sidecar``, or ``None`` and why none do."""
    campaign = sidecar.tags.get(CAMPAIGN_TAG, "")
    if isinstance(rules, RuleCatalog):
        chosen = rules.for_call(sidecar.flow_name, campaign)
        if chosen is None:
            return None, f"no QA rules for flow {sidecar.flow_name or '(none)'!r}"
        return chosen, ""
    if rules.applies_to(sidecar.flow_name, campaign):
        return rules, ""
    claimed = ", ".join([*rules.flows, *rules.campaigns])
    return None, f"rules {rules.name!r} apply to {claimed}, not flow {sidecar.flow_name or '(none)'!r}"


def check_recording(
    sidecar_path: Path,
    rules: RuleSet | RuleCatalog,
    *,
    write: bool = True,
    now: datetime | None = None,
) -> CallQa:
    """Judge one recording and (``write``) store its ``.qa.json``.

    Raises :class:`SidecarError` for an unreadable sidecar and :class:`RecordingError` when the
    QA file cannot be written.
    """
    sidecar, raw_bytes = _load(sidecar_path)
    return _judge(sidecar_path, sidecar, raw_bytes, rules, write=write, now=now or datetime.now(UTC))


def _load(path: Path) -> tuple[Sidecar, bytes]:
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise SidecarError(path, f"cannot read: {exc.strerror}") from exc
    return read_sidecar(path), raw_bytes


def _judge(
    path: Path,
    sidecar: Sidecar,
    raw_bytes: bytes,
    rules: RuleSet | RuleCatalog,
    *,
    write: bool,
    now: datetime,
    transcriber: Retranscriber | None = None,
    retranscribe: bool = False,
) -> CallQa:
    digest = hashlib.sha256(raw_bytes).hexdigest()
    if sidecar.status == "recording":
        live = is_being_written(path.parent / sidecar.wav_name)
        reason = "still recording" if live else "not sealed yet (the next `serve` start recovers it)"
        return CallQa(path, sidecar, skipped=reason, sidecar_sha256=digest)
    chosen, why = rules_for(rules, sidecar)
    if chosen is None:
        return CallQa(path, sidecar, skipped=why, sidecar_sha256=digest)
    added: dict[str, int] = {}
    try:
        document = json.loads(raw_bytes)
        if transcriber is not None:
            wav = path.parent / sidecar.wav_name
            document, added = retranscribed(document, wav, transcriber, retranscribe, caller_phrases(chosen))
        result = evaluate(chosen, document)
    except (ValueError, QaInputError) as exc:  # the file changed between the two reads
        raise SidecarError(path, f"cannot be judged: {exc}") from exc
    qa_path = None
    if write:
        qa_path = qa_path_for(path)
        written = qa_document(result, path, digest, now)
        if added:
            written["retranscribed"] = added
        write_qa_file(qa_path, written)
    return CallQa(path, sidecar, result, qa_path, sidecar_sha256=digest, retranscribed=added)


def _in_range(path: Path, root: Path, since: datetime | None, until: datetime | None) -> bool:
    """Skip whole day folders (``YYYY/MM/DD``, the UTC day a call started) outside the range."""
    try:
        parts = path.relative_to(root).parts[:-1]
        day = datetime(int(parts[-3]), int(parts[-2]), int(parts[-1]), tzinfo=UTC).date()
    except (ValueError, IndexError):
        return True
    if since is not None and day < since.astimezone(UTC).date():
        return False
    return not (until is not None and day > until.astimezone(UTC).date())


def run_batch(
    root: Path,
    rules: RuleSet | RuleCatalog,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    call_ids: Sequence[str] = (),
    write: bool = True,
    console: Console | None = None,
    show_progress: bool = True,
    now: datetime | None = None,
    transcriber: Retranscriber | None = None,
    retranscribe: bool = False,
) -> BatchReport:
    """Judge every sealed recording under ``root`` that started within ``since``..``until``
    (or only ``call_ids``), with a progress bar on ``console`` (stderr by default); with a
    ``transcriber``, tracks are re-transcribed first where needed (or on ``retranscribe``)."""
    wanted = set(call_ids)
    paths = [
        p
        for p in sidecar_files(root)
        if (not wanted or p.name.removesuffix(SIDECAR_SUFFIX) in wanted) and _in_range(p, root, since, until)
    ]
    batch = _Batch(rules, since, until, write, now or datetime.now(UTC), transcriber, retranscribe)
    progress = Progress(
        TextColumn("[bold]QA[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[call]}"),
        TimeRemainingColumn(),
        console=console or Console(stderr=True),
        transient=True,
        disable=not show_progress,
    )
    with progress:
        task = progress.add_task("qa", total=len(paths), call="")
        for path in paths:
            progress.update(task, call=path.name.removesuffix(SIDECAR_SUFFIX))
            batch.one(path)
            progress.advance(task)
    batch.calls.sort(key=lambda c: (c.sidecar.started_at, c.sidecar.call_id))
    return BatchReport(tuple(batch.calls), tuple(batch.skipped), tuple(batch.errors))


@dataclass
class _Batch:
    rules: RuleSet | RuleCatalog
    since: datetime | None
    until: datetime | None
    write: bool
    checked_at: datetime
    transcriber: Retranscriber | None = None
    retranscribe: bool = False
    calls: list[CallQa] = field(default_factory=list)
    skipped: list[CallQa] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def one(self, path: Path) -> None:
        try:
            sidecar, raw_bytes = _load(path)
            if self.since is not None and sidecar.started_at < self.since:
                return
            if self.until is not None and sidecar.started_at >= self.until:
                return
            call = _judge(
                path,
                sidecar,
                raw_bytes,
                self.rules,
                write=self.write,
                now=self.checked_at,
                transcriber=self.transcriber,
                retranscribe=self.retranscribe,
            )
        except RecordingError as exc:
            self.errors.append(str(exc))
            return
        (self.skipped if call.result is None else self.calls).append(call)


def check_and_store(
    sidecar_path: Path,
    rules: RuleSet | RuleCatalog,
    *,
    root: Path,
    index_url: str = "",
    index_settings: DatabaseSettings | None = None,
) -> CallQa | None:
    """Judge a call just sealed, write its ``.qa.json`` and bring its call index row up to date.

    For the end of a live call, after :meth:`recordings.DualTrackRecorder.close` (blocking file
    and database work: run it on a worker thread). ``rules`` is loaded once, at start-up
    (:func:`recordings.qa_rules_loader.load_catalog`); ``root``, ``index_url`` and
    ``index_settings`` are what the recorder was given. Never raises for a QA problem: an
    unreadable sidecar or an unwritable QA file is logged (``qa_not_checked``) and gives
    ``None``; a database that is down leaves the call spooled (the next ``recordings`` command
    or seal indexes it). Returns the judged call, or the call ``skipped`` with the reason (no
    rules claim its flow or campaign).
    """
    try:
        call = check_recording(sidecar_path, rules)
        if call.qa_path is not None:
            refresh_index(root, [(call.sidecar.call_id, sidecar_path)], index_url, index_settings)
    except (RecordingError, OSError) as exc:
        log_event("qa_not_checked", logging.WARNING, _LOG, sidecar=str(sidecar_path), error=str(exc)[:300])
        return None
    if call.result is None:
        log_event("qa_skipped", logger=_LOG, call_id=call.sidecar.call_id, reason=call.skipped)
    else:
        result = call.result
        log_event("qa_checked", logger=_LOG, call_id=result.call_id, status=result.status, score=result.score)
    return call
