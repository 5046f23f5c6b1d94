"""Who may supervise a call, and which phone the engine may ring for them.

Pure: the roster is plain data (parsed here from the mapping a YAML file or the console's users
store gives), and :func:`authorize` is a function of it. Two rules: the user must hold the
``supervisor`` role, and the SIP URI the engine is asked to call must be one registered to that
user. The second keeps the control channel from making the engine ring any number it is given
(toll fraud, or a stranger listening in under a supervisor's name).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

SUPERVISOR_ROLE = "supervisor"
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$")


class RosterError(ValueError):
    """The roster data is malformed; the message names the entry and the rule."""


@dataclass(frozen=True, slots=True)
class Supervisor:
    user: str
    roles: frozenset[str]
    uris: frozenset[str]
    """Normalised SIP URIs (:func:`normalise_uri`) the engine may ring for this user."""
    pin_hash: str = ""
    """The argon2 hash of the PIN keyed after dialling a feature code ("" none: no dial-in)."""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str


def normalise_uri(text: str) -> str:
    """``"Alice" <sip:Alice@PBX.example:5060;transport=udp>`` -> ``sip:Alice@pbx.example:5060``.

    The user part keeps its case (SIP compares it case-sensitively); scheme and host do not.
    """
    inner = text.strip()
    if "<" in inner:
        inner = inner.split("<", 1)[1].split(">", 1)[0]
    inner = inner.split(";", 1)[0].split("?", 1)[0].strip()
    scheme, sep, rest = inner.partition(":")
    if not sep or scheme.lower() not in ("sip", "sips") or not rest:
        raise ValueError(f"{text!r} is not a SIP URI (expected sip:user@host)")
    user, at, host = rest.rpartition("@")
    if not host or any(ch.isspace() for ch in rest):
        raise ValueError(f"{text!r} is not a SIP URI (expected sip:user@host)")
    return f"{scheme.lower()}:{user}{at}{host.lower()}"


def parse_roster(raw: object, where: str) -> dict[str, Supervisor]:
    """``{"users": {name: {"roles": [...], "sip_uris": [...]}}}`` as supervisors by name.

    ``where`` (a file name) starts every error message.
    """
    if not isinstance(raw, Mapping) or not isinstance(raw.get("users"), Mapping):
        raise RosterError(f"{where}: expected a mapping with a 'users' mapping")
    roster: dict[str, Supervisor] = {}
    for name, entry in raw["users"].items():
        at = f"{where}: users.{name}"
        if not isinstance(name, str) or not _USER.match(name):
            raise RosterError(f"{at}: a user name is 1-100 characters from A-Z a-z 0-9 . _ @ + -")
        if not isinstance(entry, Mapping):
            raise RosterError(f"{at}: expected a mapping with 'roles' and 'sip_uris'")
        unknown = set(entry) - {"roles", "sip_uris", "pin_hash"}
        if unknown:
            raise RosterError(f"{at}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
        roles = _strings(entry.get("roles", []), f"{at}.roles")
        uris: set[str] = set()
        for index, uri in enumerate(_strings(entry.get("sip_uris", []), f"{at}.sip_uris")):
            try:
                uris.add(normalise_uri(uri))
            except ValueError as exc:
                raise RosterError(f"{at}.sip_uris[{index}]: {exc}") from None
        pin_hash = entry.get("pin_hash", "")
        if not isinstance(pin_hash, str) or (pin_hash and not pin_hash.startswith("$argon2")):
            raise RosterError(
                f"{at}.pin_hash: expected an argon2 hash (set it with run_ivr.py supervise-pin)"
            )
        roster[name] = Supervisor(name, frozenset(roles), frozenset(uris), pin_hash)
    return roster


def _strings(value: object, at: str) -> Sequence[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise RosterError(f"{at}: expected a list of strings")
    return value


def authorize(
    roster: Mapping[str, Supervisor], user: str, uri: str, console_role: bool | None = None
) -> Decision:
    """May ``user`` supervise a call from the phone at ``uri``? The reason says why not.

    ``console_role`` is what the console's users store says of ``user``: True, an active user
    with the ``supervise`` permission; False, disabled or without it (refused, whatever the
    roster says); None, no such console user (the roster's ``roles`` decide).
    """
    supervisor = roster.get(user)
    if console_role is False:
        return Decision(False, f"console user {user!r} is disabled or lacks the supervise permission")
    if supervisor is None:
        return Decision(False, f"user {user!r} is not in the supervisor roster (phones are registered there)")
    if console_role is None and SUPERVISOR_ROLE not in supervisor.roles:
        return Decision(False, f"user {user!r} does not have the {SUPERVISOR_ROLE} role")
    try:
        wanted = normalise_uri(uri)
    except ValueError as exc:
        return Decision(False, str(exc))
    if wanted not in supervisor.uris:
        return Decision(False, f"{wanted} is not a phone registered to user {user!r}")
    return Decision(True, "supervisor role and registered phone")
