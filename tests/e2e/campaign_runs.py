"""Dialer runs for the end-to-end tests: ``run_ivr.py`` subcommands, a compliance-callback call
list, and ``dial --until-done`` against a sipp callee's port.

The callee is a sipp UAS (:func:`tests.e2e.conftest.sipp_uas`); the trunk URI sends every
number to it, and each run gets its own RTP port range so parallel runs never collide.
"""

from __future__ import annotations

import csv
import subprocess
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from ivr.sipp_peer import synthesize_caller_audio
from tests.e2e.conftest import run_ivr_cli

CALLBACK_COLUMNS = (
    "phone",
    "first_name",
    "last_name",
    "timezone",
    "cooling_off_end",
    "product",
    "amount",
    "purchase_date",
    "date_of_birth",
    "id_last4",
)


def run_ivr(data_dir: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    """``run_ivr.py ARGS --data-dir DATA_DIR``, which must succeed; returns its output and log."""
    proc = run_ivr_cli(data_dir, *args, env=env, timeout=timeout)
    return proc.stdout + proc.stderr


def callback_list(path: Path, phones: Sequence[str], product: str) -> Path:
    """A compliance-callback call list: Maria Lopez at each of ``phones``, her cooling-off period
    over an hour ago, so every contact is due now."""
    cooling_off_end = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CALLBACK_COLUMNS)
        for phone in phones:
            writer.writerow(
                [
                    phone,
                    "Maria",
                    "Lopez",
                    "America/New_York",
                    cooling_off_end,
                    product,
                    "25000",
                    "2026-11-10",
                    "1980-07-04",
                    "5521",
                ]
            )
    return path


def start_callbacks(data_dir: Path, calls: Path, flow: Path, *options: str) -> None:
    """Import ``calls`` as the campaign ``callbacks`` of ``flow`` (open round the clock, plus
    ``options``, e.g. ``--max-attempts 1``) and start it."""
    run_ivr(
        data_dir,
        "campaign",
        "import",
        "callbacks",
        str(calls),
        "--kind",
        "compliance_callback",
        "--flow",
        str(flow),
        "--hours",
        "00:00-23:59",
        *options,
    )
    run_ivr(data_dir, "campaign", "start", "callbacks")


def dial(data_dir: Path, port: int, ring_timeout_s: float = 30, extra: tuple[str, ...] = ()) -> None:
    """``dial --until-done`` with the trunk at the callee listening on ``port``."""
    run_ivr(
        data_dir,
        "dial",
        "--until-done",
        *extra,
        env={
            "IVR_DIALER__TRUNK_URI": f"sip:{{number}}@127.0.0.1:{port}",
            "IVR_DIALER__RING_TIMEOUT_S": str(ring_timeout_s),
            "IVR_SIP__RTP_PORT_START": str(20000 + (port % 200) * 100),
            "IVR_SIP__RTP_PORT_RANGE": "100",
        },
        timeout=240,
    )


def person_audio(
    workdir: Path, answer: str, answer_at_s: float, then: str = "", then_after_s: float = 0.0
) -> None:
    """person.wav: "Hello?" right after answering, then ``answer`` about ``answer_at_s`` in, and
    ``then`` (e.g. "Yes." to a confirmation) ``then_after_s`` after the answer."""
    hello = synthesize_caller_audio("Hello?", workdir / "hello.wav", lead_s=0.3, tail_s=0.0)
    tail = 0.0 if then else 30.0
    later = synthesize_caller_audio(answer, workdir / "answer.wav", lead_s=answer_at_s - 1.0, tail_s=tail)
    parts = [str(hello), str(later)]
    if then:
        confirm = synthesize_caller_audio(then, workdir / "then.wav", lead_s=then_after_s, tail_s=30.0)
        parts.append(str(confirm))
    subprocess.run(["sox", *parts, "-e", "u-law", str(workdir / "person.wav")], check=True)
