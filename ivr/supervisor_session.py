"""One call's side of its supervision: what each mode change does outside the media path.

A :class:`~ivr.supervisor_leg.Supervision` rings the supervisor and carries audio; this module
turns its :class:`~supervision.supervisor_modes.ModeChange` steps into what the rest of the
call must know: the call core hears :class:`SupervisionChanged` (the bot pauses, leaves, or
carries on), ``ivr/call/<id>/supervision`` gets an event, the recording gets a ``supervisor``
turn for every stretch in which the supervisor could be heard (their voice is on the bot track
then), and the listener given by the control channel writes the audit row.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from config.logs import log_event, mask_number
from ivr.call_recording import CallRecording
from ivr.media_bridge import BridgeRecord, MediaBridge
from ivr.supervisor_leg import Supervision, SupervisorDialer
from recordings.errors import RecordingError
from recordings.sidecar import SupervisionMark
from supervision.supervisor_modes import ROUTES, Mode, ModeChange, SupervisionChanged

_log = logging.getLogger("ivr.call")
ChangeListener = Callable[[Supervision, ModeChange, datetime], None]
"""Told of every step of a supervision with its wall-clock time (the audit)."""


class CallSupervision:
    """At most one supervisor at a time on the call; see the module docstring."""

    def __init__(
        self,
        call_id: str,
        caller: MediaBridge,
        recording: CallRecording,
        *,
        publish: Callable[[str, dict[str, object]], None],
        post: Callable[[SupervisionChanged], None],
        wall_offset: float,
    ) -> None:
        self.call_id = call_id
        self._caller = caller
        self._recording = recording
        self._publish = publish
        self._post = post
        self._wall_offset = wall_offset
        self._active: Supervision | None = None
        self._listener: ChangeListener | None = None
        self._heard_since: float | None = None
        self.closed = False

    def start(
        self, user: str, uri: str, mode: Mode, dialer: SupervisorDialer, on_change: ChangeListener
    ) -> str | None:
        """Ring ``uri`` for ``user`` in ``mode``; returns why not, or None once it rings."""
        if self.closed:
            return "the call has ended"
        if self._active is not None and not self._active.over:
            return f"the call is already supervised by {self._active.user}"
        supervision = Supervision(self.call_id, user, uri, mode, caller=self._caller, dialer=dialer)
        try:
            supervision.start()
        except OSError as exc:
            return f"cannot ring the supervisor: {exc}"
        self._active, self._listener = supervision, on_change
        log_event(
            "call.supervisor_ringing",
            logger=_log,
            call_id=self.call_id,
            user=user,
            uri=mask_number(uri),
            mode=mode,
        )
        return None

    def call_frames(self, records: Sequence[BridgeRecord]) -> None:
        if self._active is not None and not self._active.over:
            self._active.call_frames(records)

    def tick(self, now: float, position_s: float) -> None:
        """Once per media tick: the supervision's steps, carried out."""
        supervision = self._active
        if supervision is not None and not supervision.over:
            self._apply(supervision, supervision.tick(now), now, position_s, tell_core=True)

    def close(self, now: float, position_s: float) -> None:
        """The call is over: hang the supervisor up and record the end (the core has finished)."""
        self.closed = True
        supervision = self._active
        if supervision is not None:
            self._apply(
                supervision, supervision.close(now, "the call ended"), now, position_s, tell_core=False
            )

    def _apply(
        self,
        supervision: Supervision,
        changes: Sequence[ModeChange],
        now: float,
        position_s: float,
        *,
        tell_core: bool,
    ) -> None:
        for change in changes:
            at = datetime.fromtimestamp(now + self._wall_offset, UTC)
            if change.kind != "key_ignored" and tell_core:
                self._post(SupervisionChanged(change.mode))
            self._record(supervision, change, position_s)
            log_event(
                f"call.supervision_{change.kind}",
                logger=_log,
                call_id=self.call_id,
                user=supervision.user,
                mode=change.mode or "none",
                previous=change.previous or "none",
                reason=change.reason or None,
            )
            self._publish(
                "supervision",
                {
                    "event": change.kind,
                    "mode": change.mode,
                    "previous": change.previous,
                    "user": supervision.user,
                    "supervisor": mask_number(supervision.uri),
                    "at": at.isoformat().replace("+00:00", "Z"),
                    "reason": change.reason,
                },
            )
            if self._listener is not None:
                try:
                    self._listener(supervision, change, at)
                except Exception:  # the audit logs its own failure; the call goes on
                    _log.exception(
                        "call.supervision_audit_failed", extra={"fields": {"call_id": self.call_id}}
                    )

    def _record(self, supervision: Supervision, change: ModeChange, position_s: float) -> None:
        """The step in the sidecar, and a ``supervisor`` turn over each stretch the caller could
        hear the supervisor (their voice is on the bot track then; it is not transcribed)."""
        recorder = self._recording.recorder
        heard_before = ROUTES[change.previous].caller_hears_supervisor
        heard_now = ROUTES[change.mode].caller_hears_supervisor
        try:
            if heard_before and not heard_now and self._heard_since is not None:
                start, self._heard_since = self._heard_since, None
                text = f"[supervisor {supervision.user}: {change.previous}; speech not transcribed]"
                recorder.add_turn("supervisor", text, start, max(start, position_s))
            elif heard_now and not heard_before:
                self._heard_since = position_s
            mark = SupervisionMark(
                change.kind, change.mode, change.previous, supervision.user, position_s, change.reason
            )
            recorder.add_supervision(mark)
        except RecordingError as exc:  # a closed or failed recording: say so, keep the call
            log_event(
                "call.supervision_not_recorded", logging.WARNING, _log, call_id=self.call_id, error=str(exc)
            )
