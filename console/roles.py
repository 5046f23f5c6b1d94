"""Who may do what in the console: the role table and a user's extra grants, as plain data.

A permission is ``area.action`` (``campaigns.run``); a role maps to a set of them and a user
may hold extra grants (a manager granted ``recordings.play``). Pure: no I/O, so the table is
tested as data and every page asks the same question the same way.
"""

from __future__ import annotations

from collections.abc import Iterable

PERMISSIONS: frozenset[str] = frozenset(
    {
        "campaigns.view",
        "campaigns.run",
        "recordings.search",
        "recordings.play",
        "flows.view",
        "flows.edit",
        "flows.publish",
        "live.view",
        "supervise",
    }
)
"""Every permission a page may ask for; a grant or a check naming anything else is refused."""

ROLES: dict[str, frozenset[str]] = {
    "admin": PERMISSIONS,
    "manager": frozenset({"campaigns.view", "campaigns.run"}),
    "auditor": frozenset({"recordings.search", "recordings.play"}),
    "supervisor": frozenset({"live.view", "supervise", "campaigns.view"}),
}


class RoleError(ValueError):
    """An unknown role or permission (a typo in ``users add`` or in a page's check)."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise RoleError(f"role {role!r} is not one of {', '.join(sorted(ROLES))}")
    return role


def check_permission(permission: str) -> str:
    if permission not in PERMISSIONS:
        raise RoleError(f"permission {permission!r} is not one of {', '.join(sorted(PERMISSIONS))}")
    return permission


def check_grants(grants: Iterable[str]) -> frozenset[str]:
    """The grants, each checked to be a known permission."""
    return frozenset(check_permission(g.strip()) for g in grants)


def permissions_of(role: str, grants: Iterable[str] = ()) -> frozenset[str]:
    """What a user of ``role`` with extra ``grants`` may do (an unknown role may do nothing)."""
    return ROLES.get(role, frozenset()) | (frozenset(grants) & PERMISSIONS)


def allowed(role: str, grants: Iterable[str], permission: str) -> bool:
    """True when the role or a grant gives ``permission``; a misspelt permission raises."""
    return check_permission(permission) in permissions_of(role, grants)
