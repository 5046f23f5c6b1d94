"""``campaign status`` on a terminal: rich tables and a progress bar, redrawn live with
``--watch``; plain text (:func:`dialer.status.format_status`) or JSON when the output is a
pipe or a file, so scripts and logs get lines, not control codes."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import IO

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from dialer.rates import Rates
from dialer.status import CampaignStatus, ContactLine, format_status

Fetch = Callable[[], Sequence[CampaignStatus]]


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def _t(value: object) -> Text:
    """Cell text, never read as rich markup (a campaign name may hold brackets)."""
    if value is None:
        return Text("-")
    if isinstance(value, datetime):
        return Text(value.strftime("%m-%d %H:%M"))  # the column headers say UTC
    return Text(str(value))


def _rates_table(status: CampaignStatus) -> Table:
    table = Table(title="rates (hours in UTC, by INVITE)", title_justify="left", expand=False)
    for header in ("", "connect", "success", "machine", "abandonment", "attempts"):
        table.add_column(header, justify="left" if not header else "right")

    def row(label: str, r: Rates) -> None:
        table.add_row(
            _t(label),
            _t(f"{_pct(r.connect_rate)} ({r.contacts_reached}/{r.contacts_dialled})"),
            _t(f"{_pct(r.success_rate)} ({r.contacts_succeeded}/{r.contacts_reached})"),
            _t(f"{_pct(r.machine_rate)} ({r.machine}/{r.answered})"),
            _t(f"{_pct(r.abandonment_rate)} ({r.abandoned}/{r.person_answered})"),
            _t(r.attempts),
        )

    row("campaign", status.rates)
    row("last 24 h", status.rates_24h)
    for hour, r in status.hourly[-8:]:
        row(f"{hour:%m-%d %H}:00", r)
    return table


def _counts_table(status: CampaignStatus) -> Table:
    table = Table(title="contacts", title_justify="left")
    table.add_column("state")
    table.add_column("n", justify="right")
    table.add_column("outcome")
    table.add_column("n", justify="right")
    states = sorted(status.by_state.items())
    outcomes = sorted(status.by_outcome.items())
    for i in range(max(len(states), len(outcomes), 1)):
        state = states[i] if i < len(states) else ("", "")
        outcome = outcomes[i] if i < len(outcomes) else ("", "")
        table.add_row(_t(state[0]), _t(state[1]), _t(outcome[0]), _t(outcome[1]))
    return table


def _contacts_table(title: str, lines: Sequence[ContactLine]) -> Table:
    table = Table(title=title, title_justify="left")
    for header in ("contact", "row", "state", "attempts", "last result", "last outcome"):
        table.add_column(header)
    table.add_column("next retry (UTC)")
    table.add_column("deadline (UTC)")
    for c in lines:
        table.add_row(
            _t(c.contact_id),
            _t(c.row_number),
            _t(c.state),
            _t(c.attempts),
            _t(c.last_result),
            _t(c.last_outcome),
            _t(c.next_retry),
            _t(c.deadline),
        )
    return table


def render(status: CampaignStatus) -> RenderableType:
    """One campaign as a panel: progress, counts, rates, deadlines at risk, contacts to watch."""
    done = status.finished
    header = Text.assemble(
        (f"{status.contacts} contacts", "bold"),
        f"  finished {done} of {status.contacts}  do-not-call {status.dnc}"
        f"  lines in use {status.lines_in_use}  success means: {', '.join(sorted(status.success_outcomes))}",
    )
    parts: list[RenderableType] = [
        header,
        ProgressBar(total=max(status.contacts, 1), completed=done, width=60),
        _counts_table(status),
        _rates_table(status),
    ]
    risk_title = f"at risk of missing their deadline: {status.at_risk_total}"
    if status.at_risk_total > len(status.at_risk):
        risk_title += f" (first {len(status.at_risk)} shown)"
    parts.append(_contacts_table(risk_title, status.at_risk) if status.at_risk else Text(risk_title))
    if status.watch:
        parts.append(_contacts_table("in a call, next retries, latest outcomes", status.watch))
    title = Text(f"campaign {status.name} ({status.kind}): {status.state}")
    subtitle = Text(f"at {status.now:%Y-%m-%d %H:%M:%S} UTC")
    return Panel(Group(*parts), title=title, subtitle=subtitle, title_align="left")


def render_all(statuses: Sequence[CampaignStatus]) -> RenderableType:
    return Group(*(render(s) for s in statuses)) if statuses else Text("no campaigns")


def show(
    fetch: Fetch,
    *,
    console: Console,
    as_json: bool = False,
    watch: bool = False,
    interval: float = 2.0,
    iterations: int | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    """Print the status once, or with ``watch`` every ``interval`` seconds until Ctrl-C (or
    ``iterations`` times). A terminal gets a live redraw, anything else plain blocks or one
    JSON document per line."""
    count = 0

    def more() -> bool:
        return watch and (iterations is None or count < iterations)

    try:
        if as_json or not console.is_terminal:
            out = console.file
            while True:
                _print_plain(fetch(), out, as_json)
                count += 1
                if not more():
                    return 0
                sleep(interval)
        if not watch:
            console.print(render_all(fetch()))
            return 0
        with Live(render_all(fetch()), console=console, auto_refresh=False) as live:
            count = 1
            live.refresh()
            while more():
                sleep(interval)
                live.update(render_all(fetch()), refresh=True)
                count += 1
    except KeyboardInterrupt:
        pass
    return 0


def _print_plain(statuses: Sequence[CampaignStatus], out: IO[str], as_json: bool) -> None:
    if as_json:
        out.write(json.dumps([s.as_dict() for s in statuses], sort_keys=True) + "\n")
    else:
        out.write(("\n\n".join(format_status(s) for s in statuses) or "no campaigns") + "\n\n")
    out.flush()
