"""The checks of the campaign acceptance run (bench/acceptance_campaign.py), over plain data:
what the sipp callees saw (wall clock), the ``campaign export`` rows, ``campaign status
--json`` and the recordings. Each check returns its figures and the offending items, if any.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from bench.acceptance_callees import CalleeCall

PERSON_RESULTS = {"answered", "answered_human"}
ANSWERED_RESULTS = PERSON_RESULTS | {"answered_machine"}


@dataclass(frozen=True)
class Planned:
    """One contact as the run planned it."""

    phone: str
    campaign: str
    zone: str
    hours: str
    deadline: datetime
    margin: timedelta
    behaviour: str
    person: bool
    dnc: bool


def _clock(text: str) -> time:
    return time.max if text == "24:00" else time.fromisoformat(text)


def within_hours(at: datetime, zone: str, hours: str) -> bool:
    """Whether ``at`` is inside ``hours`` (HH:MM-HH:MM, start inclusive) on the callee's clock."""
    start, end = (_clock(part) for part in hours.split("-"))
    local = at.astimezone(ZoneInfo(zone)).time()
    return start <= local < end


def cancelled_by_dialer(call: CalleeCall, behaviour: str, ring_timeout_s: float) -> bool:
    """A CANCEL that was not the ring timeout of a phone nobody picks up: our own hang-up."""
    if call.cancelled_at is None:
        return False
    if behaviour != "no_answer":
        return True
    return (call.cancelled_at - call.invite_at).total_seconds() < ring_timeout_s - 1.0


def check_invites(calls: Iterable[CalleeCall], plan: Mapping[str, Planned]) -> dict[str, Any]:
    """0 INVITEs outside callee-local hours, after a deadline, or to a do-not-call number."""
    outside, late, after_last_start, to_dnc = [], [], [], []
    total = 0
    for call in calls:
        total += 1
        p = plan[call.number]
        where = f"{p.phone[:-4]}**** {call.invite_at.isoformat()} ({p.zone}, hours {p.hours})"
        if not within_hours(call.invite_at, p.zone, p.hours):
            local = call.invite_at.astimezone(ZoneInfo(p.zone))
            outside.append(f"{where}: local {local:%H:%M:%S}")
        if call.invite_at >= p.deadline:
            late.append(f"{where}: deadline {p.deadline.isoformat()}")
        elif call.invite_at > p.deadline - p.margin:
            after_last_start.append(f"{where}: last start {(p.deadline - p.margin).isoformat()}")
        if p.dnc:
            to_dnc.append(where)
    return {
        "invites": total,
        "outside_hours": outside,
        "after_deadline": late,
        "after_last_start": after_last_start,
        "to_dnc": to_dnc,
    }


JITTER = timedelta(milliseconds=20)
"""Each callee is its own sipp process, stamping messages when it gets to them: on a loaded
machine a BYE sent just before the next INVITE can be stamped a fraction of a millisecond after
it. :func:`max_lines` with ``JITTER`` counts a call from 20 ms after its INVITE."""


def max_lines(
    calls: Iterable[CalleeCall], until: datetime, slack: timedelta = timedelta(0)
) -> tuple[int, str]:
    """The most calls the callees had at once (INVITE received, plus ``slack``, to the call's end)."""
    edges: list[tuple[datetime, int]] = []
    for call in calls:
        end = call.ended_at or until
        if call.invite_at + slack < end:
            edges.append((call.invite_at + slack, 1))
            edges.append((end, -1))
    live = peak = 0
    peak_at = ""
    for at, step in sorted(edges, key=lambda e: (e[0], e[1])):  # an end before a start at one instant
        live += step
        if live > peak:
            peak, peak_at = live, at.isoformat()
    return peak, peak_at


def check_attempts(
    calls_by_number: Mapping[str, list[CalleeCall]],
    rows: Mapping[str, dict[str, str]],
    plan: Mapping[str, Planned],
    ring_timeout_s: float,
) -> dict[str, Any]:
    """Every counted attempt is an INVITE a callee got and was not our own hang-up; nothing else."""
    mismatches, bad_results = [], []
    cancelled = 0
    for phone, p in plan.items():
        calls = calls_by_number.get(phone, [])
        ours = sum(cancelled_by_dialer(c, p.behaviour, ring_timeout_s) for c in calls)
        cancelled += ours
        counted = len(calls) - ours
        row = rows[phone]
        if int(row["attempts"]) != counted:
            mismatches.append(
                f"row {row['row']} ({p.behaviour}): export attempts {row['attempts']}, callee saw "
                f"{len(calls)} INVITEs of which {ours} we cancelled"
            )
        if row["last_result"] in {"network_failure", "worker_lost", "cancelled"}:
            bad_results.append(f"row {row['row']}: last_result {row['last_result']}")
        if p.dnc and (row["outcome"] != "do_not_call" or row["attempts"] != "0"):
            bad_results.append(f"row {row['row']}: on the DNC list but {row['outcome']}/{row['attempts']}")
    return {"cancelled_by_dialer": cancelled, "attempt_mismatches": mismatches, "bad_results": bad_results}


def check_declines(
    rows: Mapping[str, dict[str, str]], plan: Mapping[str, Planned], recordings: Mapping[str, dict[str, Any]]
) -> dict[str, Any]:
    """Every ``declined`` came after the double-check question; a callee who said "no" once
    (then "yes") never ended declined."""
    unconfirmed, wrongly = [], []
    declined = 0
    for phone, row in rows.items():
        if row["outcome"] != "declined":
            continue
        declined += 1
        p = plan[phone]
        if p.behaviour in {"no_once", "yes"}:
            wrongly.append(f"row {row['row']} ({p.behaviour}) declined")
        rec = recordings.get(row["recording_id"])
        turns = rec["turns"] if rec else []
        asked_again = any(t["speaker"] == "bot" and "Just to be sure" in t["text"] for t in turns)
        noes = sum(t["speaker"] != "bot" and "no" in t["text"].lower().split() for t in turns)
        if not asked_again or noes < 2:
            unconfirmed.append(f"row {row['row']}: asked again {asked_again}, callee 'no' turns {noes}")
    return {"declined": declined, "declined_unconfirmed": unconfirmed, "declined_wrong_callee": wrongly}


def check_expiry(rows: Mapping[str, dict[str, str]], plan: Mapping[str, Planned]) -> list[str]:
    """Expiries raised after the last start (less than the margin before the deadline), unless a
    call that started in time was still going then (the expiry waits for it)."""
    late = []
    for phone, row in rows.items():
        if row["outcome"] != "expired":
            continue
        p = plan[phone]
        last_start = p.deadline - p.margin
        at = datetime.fromisoformat(row["outcome_at"])
        ended = datetime.fromisoformat(row["ended_at"]) if row["ended_at"] else None
        if at > last_start and not (ended is not None and ended > last_start):
            after = (at - last_start).total_seconds()
            late.append(f"row {row['row']} ({p.campaign}): {after:.1f} s after the last start")
    return late


def export_rates(rows: Iterable[dict[str, str]], successes: set[str]) -> dict[str, float | None]:
    """The rate definitions recomputed from the export (each callee answers every call the same
    way, so a contact's last result stands for all its counted calls)."""
    dialled = reached = succeeded = answered = machine = 0
    for row in rows:
        attempts = int(row["attempts"])
        dialled += attempts > 0
        person = attempts > 0 and row["last_result"] in PERSON_RESULTS
        reached += person
        succeeded += person and row["outcome"] in successes
        if row["last_result"] in ANSWERED_RESULTS:
            answered += attempts
            machine += attempts if row["last_result"] == "answered_machine" else 0
    return {
        "connect_rate": reached / dialled if dialled else None,
        "success_rate": succeeded / reached if reached else None,
        "machine_rate": machine / answered if answered else None,
    }


def truth_rates(
    calls_by_number: Mapping[str, list[CalleeCall]], plan: Mapping[str, Planned], ring_timeout_s: float
) -> dict[str, float | None]:
    """Connect and machine rates from what the callees were (person or not) and saw."""
    dialled = reached = answered = machine = 0
    for phone, p in plan.items():
        calls = calls_by_number.get(phone, [])
        counted = [c for c in calls if not cancelled_by_dialer(c, p.behaviour, ring_timeout_s)]
        dialled += bool(counted)
        reached += p.person and any(c.answered_at for c in counted)
        picked_up = sum(c.answered_at is not None for c in counted)
        answered += picked_up
        machine += 0 if p.person else picked_up
    return {
        "connect_rate": reached / dialled if dialled else None,
        "machine_rate": machine / answered if answered else None,
    }


def rate_mismatches(status: Mapping[str, Any], recomputed: Mapping[str, float | None]) -> list[str]:
    found = []
    for name, value in recomputed.items():
        shown = status["rates"].get(name)
        if (shown is None) != (value is None) or (
            shown is not None and value is not None and abs(shown - value) > 1e-9
        ):
            found.append(f"{status['name']}: {name} status {shown} export {value}")
    return found
