"""``<call>.qa.json``: a call's QA result, written next to its sidecar, and the verdict the call
index keeps of it.

The file is derived data: it names the exact sidecar bytes it judged (``sidecar_sha256``, the
manifest's hash) and the rules file (``rules.sha256``), is created 0600 and replaced
atomically. It never replaces a sidecar: a call whose id ends in ``.qa`` has a sidecar named
like a QA file (:func:`recordings.recovery.is_qa_result` tells them apart).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recordings.errors import RecordingError
from recordings.private_fs import fsync_dir, open_private
from recordings.recovery import QA_SUFFIX, is_qa_result
from recordings.sidecar import SIDECAR_SUFFIX, iso

if TYPE_CHECKING:
    from recordings.qa_check import QaResult

QA_SCHEMA = 1
QA_STATUSES = ("pass", "fail", "incomplete")


@dataclass(frozen=True)
class QaSummary:
    """What the call index keeps of a QA result: enough to filter and list calls by it."""

    status: str
    """``pass``, ``fail`` or ``incomplete``."""
    score: float | None
    failed_rules: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """The ``qa`` object of ``recordings search --json`` and ``list --json``."""
        return {"status": self.status, "score": self.score, "failed_rules": list(self.failed_rules)}

    def describe(self) -> str:
        """``fail 52.6``: the QA cell of a table."""
        return self.status if self.score is None else f"{self.status} {self.score:g}"


def qa_path_for(sidecar_path: Path) -> Path:
    """``2024/05/01/c1.json`` -> ``2024/05/01/c1.qa.json``."""
    return sidecar_path.with_name(sidecar_path.name.removesuffix(SIDECAR_SUFFIX) + QA_SUFFIX)


def read_qa_file(path: Path) -> dict[str, Any]:
    """A ``.qa.json`` as written by :func:`write_qa_file`; :class:`RecordingError` if it is not one."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RecordingError(f"{path}: cannot read the QA result: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("qa_schema") != QA_SCHEMA:
        raise RecordingError(f"{path}: not a QA result (qa_schema {QA_SCHEMA})")
    return raw


def write_qa_file(path: Path, document: dict[str, Any]) -> None:
    """Replace ``path`` atomically with ``document`` (0600, fsynced); refuses to replace a sidecar."""
    if path.exists() and not is_qa_result(path):
        raise RecordingError(f"{path}: is a recording's sidecar, not a QA result: not replaced")
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(document, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    try:
        with open(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise RecordingError(f"{path}: cannot write the QA result: {exc.strerror or exc}") from exc


def qa_document(
    result: QaResult, sidecar_path: Path, sidecar_sha256: str, checked_at: datetime
) -> dict[str, Any]:
    """What a ``.qa.json`` holds: the result, and the exact sidecar and rules it was judged on."""
    document = result.to_json()
    document["sidecar"] = sidecar_path.name
    document["sidecar_sha256"] = sidecar_sha256
    document["checked_at"] = iso(checked_at)
    return document


def summary_of(document: dict[str, Any]) -> QaSummary | None:
    """The verdict of a QA document, or ``None`` if it holds none that the index can keep."""
    status, score, results = document.get("status"), document.get("score"), document.get("results")
    if status not in QA_STATUSES or not isinstance(results, list):
        return None
    if isinstance(score, bool) or not isinstance(score, int | float | None):
        return None
    failed = tuple(
        str(item["rule"])
        for item in results
        if isinstance(item, dict) and item.get("status") == "fail" and isinstance(item.get("rule"), str)
    )
    return QaSummary(str(status), None if score is None else float(score), failed)


def read_qa_summary(sidecar_path: Path, sidecar_sha256: str) -> QaSummary | None:
    """The verdict of the call's ``.qa.json`` if it judged exactly these sidecar bytes; ``None``
    when the call was not judged, or its QA file is unreadable or judged other bytes (stale)."""
    path = qa_path_for(sidecar_path)
    if not path.exists():
        return None
    try:
        document = read_qa_file(path)
    except RecordingError:
        return None
    if document.get("sidecar_sha256") != sidecar_sha256:
        return None
    return summary_of(document)
