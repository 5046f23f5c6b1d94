"""Whether this engine node takes new calls, as a load balancer's OPTIONS probe should see it.

A balancer (Kamailio's dispatcher, ``run_ivr.py balancer``) sends OPTIONS to every node and keeps
only the nodes that answer 2xx. pjsua-lib answers out-of-dialog OPTIONS itself, before any
Python code sees them; the vendored pjproject's patch 0002 makes that answer follow the default
account's online status (200 online, 503 offline). So the node's health is published by setting
the account online or offline, and this module decides which, from plain numbers: offline while
draining or stopping, and while every line is taken (new INVITEs would get 486) or too many
answered calls still wait for their ACK (new INVITEs would get 503). A node that has not started
yet does not listen, so it does not answer at all, which the balancer also reads as down.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class NodeLoad:
    """What the node holds now (the SIP agent's counts)."""

    active_calls: int
    pending_invites: int
    capacity: int
    max_pending_invites: int
    closing: bool = False
    """Draining or stopping: no new calls whatever the load."""


def accepts_calls(load: NodeLoad) -> bool:
    """Whether a new INVITE would be served now (the same limits as :mod:`ivr.admission`)."""
    if load.closing:
        return False
    if load.active_calls >= load.capacity:
        return False
    return load.pending_invites < load.max_pending_invites


class HealthReport:
    """Publishes only changes: :meth:`update` returns the new status when it differs, else None."""

    __slots__ = ("online",)

    def __init__(self, online: bool | None = None) -> None:
        self.online = online

    def update(self, load: NodeLoad) -> bool | None:
        online = accepts_calls(load)
        if online == self.online:
            return None
        self.online = online
        return online
