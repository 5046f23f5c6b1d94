"""The new-campaign form turned into what ``campaign import`` would get: a name, a
:class:`~dialer.call_list_rows.CampaignSpec` and a column map, each field checked with an
error that names the field. Pure: plain strings in, plain data out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from dialer.call_list_rows import CampaignSpec, parse_column_map
from dialer.db import DialerDataError
from dialer.models import CampaignKind, MachinePolicy

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$")
HOURS = re.compile(r"^\d{2}:\d{2}-\d{2}:\d{2}$")


class FormError(ValueError):
    """One field of the form is wrong; ``field`` names it for the page."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


@dataclass(frozen=True)
class ImportRequest:
    name: str
    spec: CampaignSpec
    column_map: dict[str, str]


def _text(form: Mapping[str, str], key: str, default: str = "") -> str:
    return str(form.get(key) or default).strip()


def _number(form: Mapping[str, str], key: str, default: str, low: float, high: float) -> float:
    raw = _text(form, key, default)
    try:
        value = float(raw)
    except ValueError:
        raise FormError(key, f"{raw[:40]!r} is not a number") from None
    if not low <= value <= high:
        raise FormError(key, f"{value:g} is outside {low:g}..{high:g}")
    return value


def _instant(form: Mapping[str, str], key: str) -> datetime | None:
    raw = _text(form, key)
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise FormError(key, f"{raw[:40]!r}: expected ISO 8601 like 2025-06-01T09:00:00+08:00") from None
    if value.tzinfo is None:
        raise FormError(key, f"{raw[:40]!r}: add a UTC offset, e.g. +08:00")
    return value


def parse_import_form(form: Mapping[str, str], flows: tuple[str, ...]) -> ImportRequest:
    """The checked form; ``flows`` are the flow paths the page offered (anything else is refused)."""
    name = _text(form, "name")
    if not NAME.match(name):
        raise FormError("name", "use 1-100 letters, digits, spaces, '.', '_' or '-'")
    kinds = [k.value for k in CampaignKind]
    kind = _text(form, "kind")
    if kind not in kinds:
        raise FormError("kind", f"choose one of {', '.join(kinds)}")
    flow = _text(form, "flow")
    if flow not in flows:
        raise FormError("flow", "choose one of the flows listed")
    hours = _text(form, "hours", "09:00-21:00")
    if not HOURS.match(hours):
        raise FormError("hours", f"{hours[:40]!r}: expected HH:MM-HH:MM, e.g. 09:00-21:00")
    region = _text(form, "region").upper()
    if region and not re.fullmatch(r"[A-Z]{2}", region):
        raise FormError("region", f"{region[:10]!r}: a two-letter country code such as CN or US")
    machine = _text(form, "machine", MachinePolicy.HANGUP_RETRY.value)
    if machine not in [m.value for m in MachinePolicy]:
        raise FormError("machine", f"choose one of {', '.join(m.value for m in MachinePolicy)}")
    window = _number(form, "window_hours", "24", 0.1, 24 * 365)
    attempts = int(_number(form, "max_attempts", "5", 1, 100))
    retry: dict[str, Any] = {
        "max_attempts": attempts,
        "message_left_final": machine == MachinePolicy.LEAVE_MESSAGE.value,
    }
    if kind == CampaignKind.COMPLIANCE_CALLBACK.value:
        # As `campaign import`: the order takes effect only once a callback confirms it.
        retry["outcomes"] = {"no_decision": "30m"}
    pairs = [p.strip() for p in _text(form, "map").split(",") if p.strip()]
    try:
        column_map = parse_column_map(pairs)
    except DialerDataError as exc:
        raise FormError("map", str(exc).replace("--map ", "")) from None
    spec = CampaignSpec(
        kind=CampaignKind(kind),
        flow=flow,
        region=region,
        callback_window=timedelta(hours=window),
        starts_at=_instant(form, "starts"),
        ends_at=_instant(form, "ends"),
        calling_hours={"default": hours, "holidays": []},
        retry=retry,
        machine_policy=MachinePolicy(machine),
    )
    try:
        spec.policy()  # calling hours, retry rules and dates, checked as the dialer will read them
    except (DialerDataError, ValueError) as exc:
        raise FormError("campaign", str(exc)) from None
    return ImportRequest(name, spec, column_map)
