"""Dual-track call recordings, their catalog and their tamper-evident manifest chains.

Public API: :class:`DualTrackRecorder` (one call's stereo WAV + sidecar, sealed into the signed
hash chain of its day folder), :class:`CallMetadata`, :class:`RecordingInfo`,
:func:`recover_unfinished` (run once when ``serve`` starts), :class:`Catalog` (find recordings)
and :func:`audit_archive` (prove every call untouched, what ``recordings verify`` runs).
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
