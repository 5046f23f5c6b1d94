"""Dual-track call recordings and their catalog.

Public API: :class:`DualTrackRecorder` (one call's stereo WAV + sidecar), :class:`CallMetadata`,
:class:`RecordingInfo`, :func:`recover_unfinished` (run once when ``serve`` starts) and
:class:`Catalog` (find and verify recordings).
"""

from recordings.catalog import Catalog, CatalogEntry
from recordings.dual_track_recorder import CallMetadata, DualTrackRecorder, RecordingInfo
from recordings.errors import RecordingError, SidecarError, WavFormatError
from recordings.recovery import RecoveryReport, recover_unfinished

__all__ = [
    "CallMetadata",
    "Catalog",
    "CatalogEntry",
    "DualTrackRecorder",
    "RecordingError",
    "RecordingInfo",
    "RecoveryReport",
    "SidecarError",
    "WavFormatError",
    "recover_unfinished",
]
