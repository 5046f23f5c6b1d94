"""Dual-track call recordings, their catalog and their tamper-evident manifest chains.

Public API: :class:`DualTrackRecorder` (one call's stereo WAV + sidecar, sealed into the signed
hash chain of its day folder), :class:`CallMetadata`, :class:`RecordingInfo`,
:func:`recover_unfinished` (run once when ``serve`` starts), :class:`Catalog` (find recordings)
and :func:`audit_archive` (prove every call untouched, what ``recordings verify`` runs).

The auditor's workbench around them: the call index (:mod:`recordings.call_index`, written;
:mod:`recordings.call_search`, searched; word search in :mod:`recordings.transcript_index`;
tables in :mod:`recordings.schema`, migrations in ``recordings/migrations``), QA of recorded
calls against per-flow rules (``recordings.qa_*``, docs/qa.md), numbers as keyed hashes
(:mod:`recordings.numbers`), the access log (:mod:`recordings.access_log`), retention, legal
hold and purge with signed tombstones (:mod:`recordings.retention`), the regulator bundle
(:mod:`recordings.bundle`), and the ``recordings`` commands (:mod:`recordings.cli`).
"""

from recordings.audit import AuditReport, CallAudit, audit_archive
from recordings.catalog import Catalog, CatalogEntry
from recordings.dual_track_recorder import CallMetadata, DualTrackRecorder, RecordingInfo
from recordings.errors import RecordingError, SidecarError, WavFormatError
from recordings.recovery import RecoveryReport, recover_unfinished

__all__ = [
    "AuditReport",
    "CallAudit",
    "CallMetadata",
    "Catalog",
    "CatalogEntry",
    "DualTrackRecorder",
    "RecordingError",
    "RecordingInfo",
    "RecoveryReport",
    "SidecarError",
    "WavFormatError",
    "audit_archive",
    "recover_unfinished",
]
