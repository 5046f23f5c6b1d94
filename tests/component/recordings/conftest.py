"""Database fixtures for the auditor's workbench: every test gets a fresh SQLite file and, when
reachable, a fresh PostgreSQL schema (created and dropped here). PostgreSQL missing: skip, but
fail under CI=true. Plus a recorder helper that seals calls the way ``serve`` does."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from ivr.cli import main
from media.frames import FRAME_SAMPLES
from recordings import CallMetadata, DualTrackRecorder
from recordings.database import forget_engines
from tests import db_fixtures
from tests.db_fixtures import BACKENDS, fresh_database

PG_ADMIN_URL = db_fixtures.PG_ADMIN_URL  # for modules that import these from here
_pg_admin = db_fixtures.pg_admin
T0 = datetime(2024, 5, 1, 9, 30, 0, tzinfo=UTC)


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database on each backend (SQLite: under ``tmp_path/data``, the default)."""
    with fresh_database(
        request.param, tmp_path / "data" / "ivr.sqlite3", "recordings_test", forget_engines
    ) as url:
        yield url


def config_file(data: Path, db_url: str, retention: Mapping[str, int] | None = None) -> Path:
    """A settings file pointing ``run_ivr.py`` at ``db_url`` (and a retention policy)."""
    data.mkdir(parents=True, exist_ok=True)
    path = data.parent / f"ivr-{data.name}.yaml"
    lines = ["database:", f"  url: '{db_url}'", "recordings:"]
    days = ", ".join(f"{name}: {value}" for name, value in (retention or {}).items())
    lines.append(f"  retention_days: {{{days}}}")
    path.write_text("\n".join(lines) + "\n")
    return path


def record(
    data: Path,
    call_id: str,
    *,
    start: datetime = T0,
    caller: str = "sip:+15550100123@10.0.0.1",
    callee: str = "sip:100@pbx",
    direction: str = "inbound",
    said: str = "my balance please",
    bot: str = "Welcome, how can I help?",
    outcome: str = "balance_told",
    flow: str = "hotline",
    tags: Mapping[str, str] | None = None,
    index_url: str = "",
) -> Path:
    """Seal one 1-second call into ``data/recordings`` (keys in ``data/keys``); returns the WAV."""
    meta = CallMetadata(direction, caller, callee, start, flow, "3", tags=dict(tags or {}))  # type: ignore[arg-type]
    rec = DualTrackRecorder(data / "recordings", call_id, meta, index_url=index_url)
    for i in range(50):
        rec.push_caller(np.full(FRAME_SAMPLES, 200 + i, dtype=np.int16))
        rec.push_bot(np.full(FRAME_SAMPLES, -300, dtype=np.int16))
    rec.add_turn("bot", bot, 0.0, 0.4)
    rec.add_turn("caller", said, 0.5, 0.9, 0.9)
    return rec.close(start + timedelta(seconds=1), outcome=outcome).wav_path


@pytest.fixture
def cli_environment(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No ``IVR_*`` settings or ``SUDO_USER`` from the developer's shell; engines closed after."""
    for name in list(os.environ):
        if name.startswith("IVR_") or name == "SUDO_USER":
            monkeypatch.delenv(name)
    yield
    forget_engines()


def recordings(data: Path, config: Path | None, *args: str) -> subprocess.CompletedProcess[str]:
    """``run_ivr.py recordings ARGS --data-dir DATA [--config CONFIG]``, in this process."""
    argv = ["recordings", *args, "--data-dir", str(data), *(("--config", str(config)) if config else ())]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse refusing an option
            code = int(exc.code or 0)
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())
