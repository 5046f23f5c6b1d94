"""Joining a call from a phone: the supervisor dials ``*77<short id>`` and keys a PIN.

Pure: the adapter (:mod:`ivr.supervisor_dialin`) feeds it the dialled URI, the roster, the
digits keyed with ``now``, and the result of each PIN check (argon2 is slow, so the adapter
runs it off the event loop); it answers with commands. The INVITE's From is only a claim
(anyone can write any From): it picks whose PIN to ask for, and the PIN authenticates. The
short id is checked only after the PIN, so a stranger learns nothing of which calls are live.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Literal

from supervision.supervisor_access import Supervisor, normalise_uri

DEFAULT_PREFIX = "*77"
SHORT_ID_RANGE = (10000, 99999)
"""Five digits, never a leading zero: easy to read out and to key, room for 90,000 live calls."""
PIN_MIN, PIN_MAX = 4, 12
_PREFIX = re.compile(r"^[0-9*#]{1,6}$")
_SHORT_ID = re.compile(r"^[1-9][0-9]{3,5}$")


class FeatureCodeError(ValueError):
    """A feature-code setting is malformed; the message names it and the rule."""


def check_prefix(prefix: str, where: str = "supervision.feature_code") -> str:
    """The dial prefix (``*77``), or an error: 1-6 characters from 0-9 * #."""
    if not _PREFIX.match(prefix):
        raise FeatureCodeError(f"{where}: {prefix!r} must be 1-6 characters from 0-9 * #")
    return prefix


def dialled(local_uri: str, prefix: str) -> str | None:
    """What follows ``prefix`` in the dialled URI's user part (``sip:*7712345@ivr`` -> ``12345``).

    None: not a feature-code call (the normal flow answers it). The rest is returned as dialled,
    valid or not, so a mistyped short id is refused rather than run as a normal call.
    """
    try:
        uri = normalise_uri(local_uri)
    except ValueError:
        return None
    user = uri.split(":", 1)[1].rpartition("@")[0]
    user = user.replace("%2A", "*").replace("%2a", "*").replace("%23", "#")
    return user[len(prefix) :] if prefix and user.startswith(prefix) else None


def allocate_short_id(in_use: Collection[str], draw: Callable[[int, int], int]) -> str:
    """A short id no live call holds; ``draw(low, high)`` is a random integer in [low, high]."""
    low, high = SHORT_ID_RANGE
    if len(in_use) >= (high - low + 1) // 2:
        raise RuntimeError(f"{len(in_use)} live short ids: the short id range is half full")
    while True:
        candidate = str(draw(low, high))
        if candidate not in in_use:
            return candidate


@dataclass(frozen=True, slots=True)
class Claim:
    """Whom the calling phone claims to be: a roster user with that phone and a PIN set."""

    user: str
    pin_hash: str
    phone: str
    """The roster's URI for the calling phone (as the engine would ring it)."""


def claimed_user(roster: Mapping[str, Supervisor], remote_uri: str) -> Claim | str:
    """The roster user whose registered phone is ``remote_uri`` (the INVITE's From), else why not."""
    try:
        phone = normalise_uri(remote_uri)
    except ValueError as exc:
        return f"calling phone: {exc}"
    # Compared without ports: pjsua reports the From without one, and the port says nothing of
    # who is calling (the PIN decides that).
    matches = sorted(
        (name, uri)
        for name, entry in roster.items()
        for uri in entry.uris
        if _portless(uri) == _portless(phone)
    )
    users = sorted({name for name, _uri in matches})
    if not users:
        return "the calling phone is not registered to any supervisor"
    if len(users) > 1:
        return f"the calling phone is registered to {len(users)} users; it must name one"
    entry = roster[users[0]]
    if not entry.pin_hash:
        return f"user {entry.user!r} has no PIN (run_ivr.py supervise-pin {entry.user})"
    return Claim(entry.user, entry.pin_hash, matches[0][1])


def _portless(uri: str) -> str:
    """A normalised URI without its port (``sip:a@[::1]:5060`` -> ``sip:a@[::1]``)."""
    scheme, _, rest = uri.partition(":")
    user, at, host = rest.rpartition("@")
    if host.startswith("["):
        host = host.split("]", 1)[0] + "]"
    elif host.count(":") == 1:
        host = host.split(":", 1)[0]
    return f"{scheme}:{user}{at}{host}"


@dataclass(frozen=True, slots=True)
class Verify:
    """Check this PIN against the claimed user's hash, then call :meth:`PinEntry.verified`."""

    pin: str


@dataclass(frozen=True, slots=True)
class Retry:
    """Wrong PIN; the phone may try again."""

    tries_left: int


@dataclass(frozen=True, slots=True)
class Join:
    """The PIN is right: join the call with this short id (the adapter looks it up)."""

    short_id: str


@dataclass(frozen=True, slots=True)
class Refuse:
    """Hang up; ``reason`` goes to the audit and the log, never to the phone."""

    reason: str


Command = Verify | Retry | Join | Refuse
State = Literal["collecting", "verifying", "joined", "refused"]


class PinEntry:
    """The PIN dialogue of one dial-in: digits ending with ``#`` (or a pause), ``tries`` tries."""

    def __init__(self, short_id: str, now: float, *, tries: int = 3, timeout_s: float = 10.0) -> None:
        self.short_id = short_id
        self.tries_left = tries
        self.timeout_s = timeout_s
        self.state: State = "collecting"
        self._digits = ""
        self._since = now

    def digit(self, key: str, now: float) -> Command | None:
        """A DTMF key; ``#`` ends the PIN. Keys while a PIN is being checked are dropped."""
        if self.state != "collecting":
            return None
        self._since = now
        if key == "#":
            return self._submit()
        if not key.isdigit():
            return None
        self._digits += key
        return self._submit() if len(self._digits) > PIN_MAX else None

    def tick(self, now: float) -> Command | None:
        """A pause of ``timeout_s``: the digits so far are the PIN; none at all ends the call."""
        if self.state != "collecting" or now - self._since < self.timeout_s:
            return None
        if not self._digits:
            return self._refuse("no PIN keyed")
        return self._submit()

    def verified(self, ok: bool, now: float) -> Command:
        """The outcome of :class:`Verify`."""
        if self.state != "verifying":
            raise RuntimeError(f"PIN result while {self.state}")
        self._since = now
        if ok:
            if not _SHORT_ID.match(self.short_id):
                return self._refuse(f"dialled short id {self.short_id!r} is not 4-6 digits")
            self.state = "joined"
            return Join(self.short_id)
        return self._wrong()

    def _submit(self) -> Command:
        pin, self._digits = self._digits, ""
        if not PIN_MIN <= len(pin) <= PIN_MAX:
            return self._wrong()
        self.state = "verifying"
        return Verify(pin)

    def _wrong(self) -> Command:
        self.tries_left -= 1
        if self.tries_left <= 0:
            return self._refuse("wrong PIN, no tries left")
        self.state = "collecting"
        return Retry(self.tries_left)

    def _refuse(self, reason: str) -> Refuse:
        self.state = "refused"
        return Refuse(reason)


def join_target(short_id: str, live: Mapping[str, str]) -> str | Refuse:
    """The call id holding ``short_id`` among the live calls (short id -> call id), else a refusal."""
    call_id = live.get(short_id)
    return call_id if call_id is not None else Refuse(f"no live call with short id {short_id}")
