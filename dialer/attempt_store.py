"""One attempt's life in the database: held lease, attempt row, the check before the INVITE,
the result and what it decides.

An attempt counts against its contact only once its INVITE left: :meth:`AttemptStore.dial_gate`
is the last check (calling hours, deadline, do-not-call, attempts left, campaign running,
re-read from the database and judged by :func:`dialer.scheduler.dial_check` at the moment it
runs); it records ``invite_at`` and counts the attempt, or closes the attempt as ``cancelled``
with the reason and reschedules (or finishes) the contact. A cancelled attempt never counts,
whether it was stopped before the INVITE (shutdown, no free line, a failed placer) or by us
while ringing.

Storing a result also updates the campaign's counters (:mod:`dialer.hourly_counters`) in the
same transaction.

Every write names the lease token and is refused (:class:`LeaseLostError`) once the lease was
reclaimed, so a worker that stalled past its lease cannot overwrite the newer holder's state.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from config.logs import log_event
from dialer.call_result import CallResult, Outcome
from dialer.contact_rows import expire, finish, unlease
from dialer.db import DialerDataError
from dialer.dnc import add_in_session
from dialer.hourly_counters import count_change, facts_of
from dialer.models import Attempt, Campaign, CampaignState, Contact, ContactEvent, ContactState, EventKind
from dialer.retry_policy import Decision, Final, RetryAt
from dialer.scheduler import CampaignPolicy, Reason, deadline, dial_check
from dialer.store_types import (
    DIAL_OK,
    DO_NOT_CALL_OUTCOME,
    AttemptReport,
    DialVerdict,
    ExpiredContact,
    Lease,
    LeaseLostError,
    callee_local_time,
    campaign_policy,
    final_outcome,
    slot,
)

_LOG = logging.getLogger("ivr.dialer.store")
DIAL_GUARD = timedelta(seconds=2)
"""How long an INVITE may take to leave after the check: the rules must still hold then."""
_TEXT_MAX = 500


class ContactClosedError(LeaseLostError):
    """The contact got its final outcome while leased (its number was put on the do-not-call
    list): the worker drops it without dialling."""


class AttemptStore:
    """Lease upkeep and attempt rows; :class:`dialer.store.DialerStore` adds leasing and upkeep."""

    def __init__(
        self,
        engine: Engine,
        lease_duration: timedelta = timedelta(seconds=300),
        dial_guard: timedelta = DIAL_GUARD,
    ) -> None:
        self.engine = engine
        self.lease_duration = lease_duration
        self.dial_guard = dial_guard
        self._for_update = engine.dialect.name == "postgresql"

    def _held(self, session: Session, lease: Lease) -> Contact:
        query = select(Contact).where(Contact.id == lease.contact_id)
        if self._for_update:
            query = query.with_for_update()
        contact = session.scalars(query).one_or_none()
        if contact is not None and contact.lease_token == lease.token and contact.state == ContactState.DONE:
            raise ContactClosedError(f"contact {lease.contact_id} ended {contact.outcome} while leased")
        if (
            contact is None
            or contact.lease_token != lease.token
            or contact.lease_owner != lease.owner
            or contact.state not in (ContactState.LEASED, ContactState.IN_CALL)
        ):
            raise LeaseLostError(f"lease {lease.token} on contact {lease.contact_id} was lost")
        return contact

    def renew(self, lease: Lease, now: datetime) -> Lease:
        """Extend a lease that is still held (a long call); raises :class:`LeaseLostError`."""
        with Session(self.engine) as session, session.begin():
            contact = self._held(session, lease)
            contact.lease_expires_at = now + self.lease_duration
            expires = contact.lease_expires_at
        return dataclasses.replace(lease, expires_at=expires)

    def release(self, lease: Lease, now: datetime) -> None:
        """Give a contact back undialled (paused campaign, shutdown, pacing)."""
        with Session(self.engine) as session, session.begin():
            try:
                contact = self._held(session, lease)
            except LeaseLostError:
                return
            if contact.state != ContactState.LEASED:
                raise DialerDataError(f"contact {lease.contact_id} is in a call; finish it instead")
            unlease(contact, ContactState.PENDING)

    # -- one attempt -----------------------------------------------------------------------
    def start_attempt(self, lease: Lease, now: datetime) -> int | None:
        """Write the attempt row (``started_at``: now); the contact stays ``leased`` until
        :meth:`dial_gate` passes (then it is ``in_call`` and the attempt counts).

        Returns None (and gives the contact back) when the campaign was paused or the number
        put on the do-not-call list since the lease was taken.
        """
        with Session(self.engine) as session, session.begin():
            try:
                contact = self._held(session, lease)
            except ContactClosedError:
                return None
            live = select(Attempt.id).where(Attempt.contact_id == contact.id, Attempt.ended_at.is_(None))
            if contact.state != ContactState.LEASED or session.scalar(live) is not None:
                raise DialerDataError(f"contact {lease.contact_id} already has a live call")
            state = session.scalar(select(Campaign.state).where(Campaign.id == contact.campaign_id))
            if contact.dnc or state != CampaignState.RUNNING:
                unlease(contact, ContactState.PENDING)
                return None
            attempt = Attempt(contact_id=contact.id, started_at=now, worker=lease.owner)
            session.add(attempt)
            session.flush()
            return attempt.id

    def dial_gate(
        self, lease: Lease, attempt_id: int, now: Callable[[], datetime], stopping: str = ""
    ) -> DialVerdict:
        """The check right before the INVITE (see the module docstring); ``now`` is read once the
        contact's row is locked. ``stopping`` (why the dialer is stopping) cancels the dial."""
        with Session(self.engine) as session, session.begin():
            attempt = self._attempt(session, lease, attempt_id)
            try:
                contact = self._held(session, lease)
            except ContactClosedError as exc:
                at = now()
                _close(attempt, at, f"not dialled: {exc}")
                return DialVerdict(False, "closed", attempt.detail)
            at = now()
            camp = session.get_one(Campaign, contact.campaign_id)
            if stopping or camp.state != CampaignState.RUNNING:
                why = stopping or f"campaign {camp.name} is {camp.state}"
                _close(attempt, at, f"not dialled: {why}")
                contact.next_attempt_at = max(contact.next_attempt_at, at)
                unlease(contact, ContactState.PENDING)
                return DialVerdict(False, "stopping" if stopping else "campaign_not_running", attempt.detail)
            policy = campaign_policy(camp)
            verdict = dial_check(slot(contact), policy, at, self.dial_guard)
            if verdict.ok:
                attempt.invite_at = at
                contact.attempts += 1
                contact.state = ContactState.IN_CALL
                return dataclasses.replace(DIAL_OK, at=at)
            detail = f"not dialled: {_explain(verdict.reason, verdict.not_before)} at {at.isoformat()}"
            _close(attempt, at, detail)
            gone = None
            if verdict.not_before is not None:
                contact.next_attempt_at = verdict.not_before
                unlease(contact, ContactState.PENDING)
            elif verdict.reason is Reason.DO_NOT_CALL:
                finish(session, contact, Outcome.DO_NOT_CALL.value, at, "on the do-not-call list")
            elif verdict.reason is Reason.NO_ATTEMPTS_LEFT:
                finish(session, contact, Outcome.MAX_ATTEMPTS.value, at, "no attempts left")
            else:
                expire(session, contact, at, "no call may start before the deadline")
                gone = ExpiredContact(contact.id, camp.name, contact.phone)
            return DialVerdict(False, verdict.reason.value, detail, gone)

    def cancel_attempt(
        self, lease: Lease, attempt_id: int, detail: str, now: datetime, not_before: datetime | None = None
    ) -> None:
        """Close an attempt whose INVITE never left (shutdown, no free line, a failed placer):
        result ``cancelled``, not counted; the contact waits until ``not_before`` (default now)."""
        with Session(self.engine) as session, session.begin():
            attempt = self._attempt(session, lease, attempt_id)
            contact = self._held(session, lease)
            if attempt.invite_at is not None:  # the check passed and counted it, but nothing left
                contact.attempts -= 1
                attempt.invite_at = None
            _close(attempt, now, detail)
            contact.next_attempt_at = max(contact.next_attempt_at, not_before or now)
            unlease(contact, ContactState.PENDING)

    def finish_attempt(self, lease: Lease, attempt_id: int, report: AttemptReport, now: datetime) -> Decision:
        """Store the call's result and apply the retry policy or the final outcome."""
        with Session(self.engine) as session, session.begin():
            attempt = self._attempt(session, lease, attempt_id)
            counted = attempt.invite_at is not None
            before = facts_of(attempt)
            _record(attempt, report)
            session.flush()
            contact = self._held(session, lease)
            count_change(session, contact, {attempt.id: before})
            camp = session.get_one(Campaign, contact.campaign_id)
            policy = campaign_policy(camp)
            # Only a dial that went out counts; our own hang-up (pause, shutdown) never does.
            counts = report.result is not CallResult.CANCELLED
            contact.attempts += int(counts) - int(counted)
            contact.last_result = report.result.value
            if report.recording_id:
                contact.recording_id = report.recording_id
            self._flag_late_end(attempt, contact, policy)
            decision = self._decide(session, contact, policy, report, now)
            if isinstance(decision, RetryAt):
                contact.next_attempt_at = decision.when
                unlease(contact, ContactState.PENDING)
                if report.callback_at and report.flow_outcome == policy.retry.callback_outcome:
                    detail = f"asked for {report.callback_at} local; calling at {decision.when.isoformat()}"
                    session.add(
                        ContactEvent(contact_id=contact.id, at=now, kind=EventKind.CALLBACK, detail=detail)
                    )
            else:
                outcome = final_outcome(decision, report)
                if report.flow_outcome == DO_NOT_CALL_OUTCOME:
                    add_in_session(session, contact.phone, f"flow outcome in campaign {camp.name}", now)
                finish(session, contact, outcome, now, decision.reason)
        return decision

    def _attempt(self, session: Session, lease: Lease, attempt_id: int) -> Attempt:
        attempt = session.get(Attempt, attempt_id)
        if attempt is None or attempt.contact_id != lease.contact_id:
            raise DialerDataError(f"attempt {attempt_id} is not an attempt of contact {lease.contact_id}")
        return attempt

    @staticmethod
    def _flag_late_end(attempt: Attempt, contact: Contact, policy: CampaignPolicy) -> None:
        """A call that started before the deadline but ended after it is flagged and logged."""
        end = deadline(slot(contact), policy)
        started, ended = attempt.invite_at, attempt.ended_at
        if end is None or started is None or ended is None or not started < end < ended:
            return
        attempt.ended_after_deadline = True
        log_event(
            "dialer.call_ended_after_deadline",
            logging.WARNING,
            _LOG,
            contact=contact.id,
            deadline=end.isoformat(),
            invite_at=started.isoformat(),
            ended_at=ended.isoformat(),
            over_s=round((ended - end).total_seconds(), 1),
            deadline_margin_s=policy.retry.deadline_margin.total_seconds(),
        )

    def _decide(
        self, session: Session, contact: Contact, policy: CampaignPolicy, report: AttemptReport, now: datetime
    ) -> Decision:
        if report.flow_outcome == DO_NOT_CALL_OUTCOME:
            return Final(Outcome.DO_NOT_CALL, "the callee asked not to be called again")
        retried_outcome = policy.retry.follows_flow_outcome(report.result, report.flow_outcome)
        same = session.scalar(
            select(func.count())
            .select_from(Attempt)
            .where(
                Attempt.contact_id == contact.id,
                Attempt.flow_outcome == report.flow_outcome
                if retried_outcome
                else Attempt.result == report.result.value,
            )
        )
        decision = policy.retry.decide(
            report.result,
            contact.attempts,
            now,
            same_result_count=max(1, same or 0),
            deadline=deadline(slot(contact), policy),
            hours=policy.hours,
            tz=contact.timezone,
            message_left=report.message_left,
            flow_outcome=report.flow_outcome,
            requested_at=callee_local_time(report.callback_at, contact.timezone),
        )
        if contact.dnc and isinstance(decision, RetryAt):  # listed while the call was live
            return Final(Outcome.DO_NOT_CALL, "put on the do-not-call list during the call")
        return decision


def _close(attempt: Attempt, at: datetime, detail: str) -> None:
    attempt.ended_at = at
    attempt.result = CallResult.CANCELLED.value
    attempt.detail = detail


def _record(attempt: Attempt, report: AttemptReport) -> None:
    attempt.ended_at = report.ended_at
    attempt.sip_status = report.sip_status
    attempt.result = report.result.value
    attempt.flow_outcome = report.flow_outcome
    attempt.recording_id = report.recording_id
    attempt.invite_at = report.invite_at or attempt.invite_at
    attempt.answered_at = report.answered_at
    attempt.flow_started_at = report.flow_started_at
    attempt.detail = report.detail
    attempt.decision_text = report.decision_text[:_TEXT_MAX] if report.decision_text else None
    attempt.decision_confidence = report.decision_confidence


def _explain(reason: Reason, not_before: datetime | None) -> str:
    why = {
        Reason.OUTSIDE_CALLING_HOURS: "outside the callee's calling hours",
        Reason.WINDOW_NOT_OPEN: "the contact's window is not open",
        Reason.RETRY_NOT_DUE: "the retry is not due",
        Reason.EXPIRED: "no call may start before the deadline (less the deadline margin)",
        Reason.DO_NOT_CALL: "the number is on the do-not-call list",
        Reason.NO_ATTEMPTS_LEFT: "no attempts left",
        Reason.NOT_PENDING: "the contact is not waiting to be called",
    }.get(reason, reason.value)
    return why if not_before is None else f"{why} (next allowed {not_before.isoformat()})"
