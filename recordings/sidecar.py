"""The JSON sidecar next to each WAV: who called, when, which flow, who said what, and the hash.

The sidecar is the recording's audit record, so it is only ever replaced atomically (temp file,
fsync, rename) and read back strictly: a malformed file raises :class:`SidecarError` naming
the file and the field instead of being half-understood.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from recordings.errors import RecordingError, SidecarError
from recordings.json_fields import JsonFields
from recordings.private_fs import fsync_dir, open_private

SCHEMA_VERSION = 1
SIDECAR_SUFFIX = ".json"
WAV_SUFFIX = ".wav"
CHANNELS: dict[str, str] = {"left": "caller", "right": "bot"}
SPEAKERS = ("caller", "bot", "agent", "supervisor")
STATUSES = ("recording", "complete", "interrupted")
DIRECTIONS = ("inbound", "outbound")

Status = Literal["recording", "complete", "interrupted"]
Direction = Literal["inbound", "outbound"]

_CALL_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,199}$")


def check_call_id(call_id: str) -> str:
    """A call id names files on disk, so it may not contain separators or start with a dot."""
    if not _CALL_ID.match(call_id):
        raise RecordingError(
            f"call id {call_id!r} cannot name a recording file: use 1-200 characters from "
            "A-Z a-z 0-9 . _ @ + - starting with a letter or digit"
        )
    return call_id


@dataclass(frozen=True)
class Turn:
    """One utterance; times are seconds from the start of the recording."""

    speaker: str
    text: str
    start_s: float
    end_s: float
    confidence: float | None = None
    interrupted: bool = False
    """The caller barged in: the prompt was stopped at ``end_s`` (its full text is kept). In the
    JSON only when true (``"interrupted": true``), which is what the QA rules read."""
    latency: Mapping[str, float] | None = None
    """On a bot reply to speech: when the caller stopped speaking, the end of turn was decided,
    the recognizer's final arrived and the reply's first frame left (:data:`LATENCY_KEYS`,
    seconds on the recording's clock), so each turn's delay is in the record."""

    def to_json(self) -> dict[str, Any]:
        return {
            "speaker": self.speaker,
            "text": self.text,
            "start_s": _round(self.start_s),
            "end_s": _round(self.end_s),
            "confidence": self.confidence,
            **({"interrupted": True} if self.interrupted else {}),
            **({"latency": {k: _round(v) for k, v in self.latency.items()}} if self.latency else {}),
        }

    def describe(self) -> str:
        """One line of a transcript: ``[  39.93 -   42.93]    bot: text (0.91) [interrupted]``,
        a reply with its delay: ``[reply 412 ms: end of turn +300, recognizer +40, audio +72]``."""
        conf = "" if self.confidence is None else f" ({self.confidence:.2f})"
        cut = " [interrupted]" if self.interrupted else ""
        head = f"[{self.start_s:7.2f} - {self.end_s:7.2f}] {self.speaker:>6}"
        return f"{head}: {self.text}{conf}{cut}{self._delay()}"

    def _delay(self) -> str:
        marks = self.latency or {}
        if not all(key in marks for key in LATENCY_KEYS):
            return ""
        points = [marks[key] for key in LATENCY_KEYS]
        steps = [round(1000 * (b - a)) for a, b in itertools.pairwise(points)]
        total = round(1000 * (points[-1] - points[0]))
        return f" [reply {total} ms: end of turn +{steps[0]}, recognizer +{steps[1]}, audio +{steps[2]}]"


@dataclass(frozen=True)
class Pause:
    """A stretch where both channels were replaced by silence (e.g. a card number was spoken)."""

    start_s: float
    end_s: float | None
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"start_s": _round(self.start_s), "end_s": _round(self.end_s), "reason": self.reason}

    def describe(self) -> str:
        """One line of a transcript: ``[recording paused 12.00-31.50s] card number``."""
        end = "-" if self.end_s is None else f"{self.end_s:.2f}"
        return f"[recording paused {self.start_s:.2f}-{end}s] {self.reason}".rstrip()


ALERT_SEVERITIES = ("info", "low", "medium", "high", "critical")


@dataclass(frozen=True)
class AlertRecord:
    """A live supervision alert that fired during the call (``supervision/alerts.py``):
    which rule, how severe, when (seconds from the start) and why. Never holds redacted text."""

    rule: str
    kind: str
    severity: str
    at_s: float
    evidence: str
    action: Mapping[str, object] | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "kind": self.kind,
            "severity": self.severity,
            "at_s": _round(self.at_s),
            "evidence": self.evidence,
            **({"action": dict(self.action)} if self.action else {}),
        }

    def describe(self) -> str:
        """One line: ``[  12.34] ALERT high legal_threat: said 'lawyer'``."""
        return f"[{self.at_s:7.2f}] ALERT {self.severity} {self.rule}: {self.evidence}"


SUPERVISION_EVENTS = ("started", "mode_changed", "ended", "key_ignored")


@dataclass(frozen=True)
class SupervisionMark:
    """A supervisor joined the call, changed mode or left (``ivr/supervisor_session.py``):
    who, in which mode, when (seconds from the start) and why. The audit log has the same steps."""

    event: str
    mode: str | None
    previous: str | None
    user: str
    at_s: float
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"event": self.event, "mode": self.mode, "previous": self.previous, "user": self.user,
                "at_s": _round(self.at_s), "reason": self.reason}  # fmt: skip

    def describe(self) -> str:
        """One line: ``[  12.34] SUPERVISOR alice mode_changed listen -> barge (key 5)``."""
        why = f" ({self.reason})" if self.reason else ""
        return f"[{self.at_s:7.2f}] SUPERVISOR {self.user} {self.event} {self.previous} -> {self.mode}{why}"


@dataclass(frozen=True)
class Sidecar:
    call_id: str
    direction: Direction
    from_masked: str
    to_masked: str
    started_at: datetime
    wav_name: str
    status: Status = "recording"
    ended_at: datetime | None = None
    connected_duration_s: float | None = None
    duration_s: float | None = None
    flow_name: str = ""
    flow_version: str = ""
    sample_rate: int = 8000
    sha256: str | None = None
    turns: tuple[Turn, ...] = ()
    pauses: tuple[Pause, ...] = ()
    tags: dict[str, str] = field(default_factory=dict)
    outcome: str = ""
    number_key_id: str = ""
    """Which number key made ``from_hmac``/``to_hmac`` (see :mod:`recordings.numbers`); empty: none."""
    from_hmac: str = ""
    to_hmac: str = ""
    alerts: tuple[AlertRecord, ...] = ()
    supervision: tuple[SupervisionMark, ...] = ()

    def with_changes(self, **changes: Any) -> Sidecar:
        return replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA_VERSION,
            "call_id": self.call_id,
            "status": self.status,
            "direction": self.direction,
            "from": self.from_masked,
            "to": self.to_masked,
            "started_at": iso(self.started_at),
            "ended_at": iso(self.ended_at) if self.ended_at else None,
            "connected_duration_s": _round(self.connected_duration_s),
            "duration_s": _round(self.duration_s),
            "flow": {"name": self.flow_name, "version": self.flow_version},
            "outcome": self.outcome,
            "wav": self.wav_name,
            "channels": dict(CHANNELS),
            "sample_rate": self.sample_rate,
            "sample_width_bits": 16,
            "sha256": self.sha256,
            "turns": [t.to_json() for t in self.turns],
            "pauses": [p.to_json() for p in self.pauses],
            "tags": dict(self.tags),
            **({"alerts": [a.to_json() for a in self.alerts]} if self.alerts else {}),
            **({"supervision": [m.to_json() for m in self.supervision]} if self.supervision else {}),
            **(
                {"numbers": {"key_id": self.number_key_id, "from": self.from_hmac, "to": self.to_hmac}}
                if self.number_key_id
                else {}
            ),
        }


def iso(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; naive datetimes are refused rather than guessed."""
    if moment.tzinfo is None:
        raise RecordingError(f"timestamp {moment!r} has no time zone; pass an aware datetime (UTC)")
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


LATENCY_KEYS = ("speech_end_s", "decided_s", "asr_final_s", "reply_start_s")


def _latency(turn: JsonFields) -> dict[str, float] | None:
    raw = turn.get("latency", dict, optional=True)
    if raw is None:
        return None
    marks = JsonFields(turn.path, raw, turn.name("latency"))
    unknown = sorted(set(raw) - set(LATENCY_KEYS))
    if unknown:
        raise marks.fail(unknown[0], f"is not one of {', '.join(LATENCY_KEYS)}")
    return {key: marks.number(key) for key in LATENCY_KEYS if key in raw}


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def sidecar_path(directory: Path, call_id: str) -> Path:
    return directory / f"{check_call_id(call_id)}{SIDECAR_SUFFIX}"


def write_sidecar(path: Path, sidecar: Sidecar, durable: bool = True) -> str:
    """Replace ``path`` atomically (0600); ``durable`` also fsyncs so the rename survives a power cut.

    Returns the SHA-256 of the bytes written, which the seal's manifest vouches for.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    data = json.dumps(sidecar.to_json(), ensure_ascii=False, indent=2).encode("utf-8") + b"\n"
    with open(open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), "wb") as handle:
        handle.write(data)
        handle.flush()
        if durable:
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if durable:
        fsync_dir(path.parent)
    return hashlib.sha256(data).hexdigest()


def read_sidecar(path: Path) -> Sidecar:
    """Parse and validate one sidecar; every problem names ``path`` and the field."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SidecarError(path, f"cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise SidecarError(path, f"not UTF-8 text (byte {exc.start})") from exc
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SidecarError(path, f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from exc
    return _parse(path, raw)


def _parse(path: Path, raw: Any) -> Sidecar:
    f = JsonFields(path, raw)
    schema = f.get("schema", int)
    if schema != SCHEMA_VERSION:
        raise f.fail("schema", f"version {schema} is not supported (expected {SCHEMA_VERSION})")
    call_id = f.get("call_id", str)
    flow = JsonFields(path, f.get("flow", dict), "flow")
    sha = f.get("sha256", str, optional=True)
    if sha is not None and not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise f.fail("sha256", f"{sha!r} is not a hex SHA-256 digest")
    wav = f.get("wav", str)
    if Path(wav).name != wav:
        raise f.fail("wav", f"{wav!r} must be a file name next to the sidecar")
    turns = []
    for index, item in enumerate(f.get("turns", list)):
        t = JsonFields(path, item, f"turns[{index}]")
        turns.append(
            Turn(
                speaker=t.choice("speaker", SPEAKERS),
                text=t.get("text", str),
                start_s=t.number("start_s"),
                end_s=t.number("end_s"),
                confidence=t.optional_number("confidence"),
                interrupted=bool(t.get("interrupted", bool, optional=True)),
                latency=_latency(t),
            )
        )
    pauses = []
    for index, item in enumerate(f.get("pauses", list)):
        p = JsonFields(path, item, f"pauses[{index}]")
        pauses.append(
            Pause(
                start_s=p.number("start_s"),
                end_s=p.optional_number("end_s"),
                reason=p.get("reason", str, optional=True) or "",
            )
        )
    tags = f.get("tags", dict, optional=True) or {}
    alerts = []
    for index, item in enumerate(f.get("alerts", list, optional=True) or []):
        a = JsonFields(path, item, f"alerts[{index}]")
        alerts.append(
            AlertRecord(
                rule=a.get("rule", str),
                kind=a.get("kind", str),
                severity=a.choice("severity", ALERT_SEVERITIES),
                at_s=a.number("at_s"),
                evidence=a.get("evidence", str),
                action=a.get("action", dict, optional=True),
            )
        )
    numbers_raw = f.get("numbers", dict, optional=True)
    numbers = JsonFields(path, numbers_raw, "numbers") if numbers_raw is not None else None
    return Sidecar(
        call_id=call_id,
        status=f.choice("status", STATUSES),  # type: ignore[arg-type]
        direction=f.choice("direction", DIRECTIONS),  # type: ignore[arg-type]
        from_masked=f.get("from", str),
        to_masked=f.get("to", str),
        started_at=f.moment("started_at"),
        ended_at=f.optional_moment("ended_at"),
        connected_duration_s=f.optional_number("connected_duration_s"),
        duration_s=f.optional_number("duration_s"),
        flow_name=flow.get("name", str),
        flow_version=str(flow.get("version", (str, int))),
        wav_name=wav,
        sample_rate=int(f.get("sample_rate", int)),
        sha256=sha,
        turns=tuple(turns),
        pauses=tuple(pauses),
        tags={str(k): str(v) for k, v in tags.items()},
        outcome=f.get("outcome", str, optional=True) or "",
        number_key_id=numbers.get("key_id", str) if numbers else "",
        from_hmac=_hmac_field(numbers, "from"),
        to_hmac=_hmac_field(numbers, "to"),
        alerts=tuple(alerts),
        supervision=tuple(
            _supervision_mark(JsonFields(path, item, f"supervision[{index}]"))
            for index, item in enumerate(f.get("supervision", list, optional=True) or [])
        ),
    )


def _supervision_mark(m: JsonFields) -> SupervisionMark:
    return SupervisionMark(
        event=m.choice("event", SUPERVISION_EVENTS),
        mode=m.get("mode", str, optional=True),
        previous=m.get("previous", str, optional=True),
        user=m.get("user", str),
        at_s=m.number("at_s"),
        reason=m.get("reason", str, optional=True) or "",
    )


def _hmac_field(numbers: JsonFields | None, key: str) -> str:
    """A keyed number hash: hex SHA-256 size, or empty (no number was given)."""
    if numbers is None:
        return ""
    value: str = numbers.get(key, str)
    if value and not re.fullmatch(r"[0-9a-f]{64}", value):
        raise numbers.fail(key, f"{value!r} is not a hex HMAC-SHA256")
    return value
