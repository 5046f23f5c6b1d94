"""Run fuzz cases against one entry point, in a process of its own.

``python -m tests.fuzz.fuzz_harness flows|csv|settings --seed N --cases M`` feeds every case to
the entry point and accepts only its documented failures (a located problem, an
:class:`~config.errors.IvrError` with a short message). Anything else (a traceback, a case
slower than ``--case-budget``, a message that reprints a blob or a secret) prints the case
name, which replays it with the same seed, and exits 1. The last line is a JSON summary
with the process's peak memory, which the test bounds (it also caps the address space).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import resource
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from config.errors import ConfigError, IvrError
from config.settings import load_settings
from dialer.db import make_engine, upgrade_database
from dialer.importer import CampaignSpec, import_csv
from dialer.models import CampaignKind
from flows import (
    DtmfDigit,
    Event,
    Flow,
    FlowSession,
    FlowValidationError,
    NoInput,
    Play,
    PromptFinished,
    Recognition,
    load_flow,
    validate_paths,
)
from flows.template_limits import MAX_PROMPT_CHARS
from tests.fuzz.fuzz_inputs import (
    HOSTILE_CELLS,
    ROOT,
    FlowCase,
    SettingsCase,
    csv_cases,
    flow_cases,
    settings_cases,
)

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
MAX_MESSAGE = 600
_PROBLEM = re.compile(r"^.+:\d+:\d+: \S")


class FuzzFailure(AssertionError):
    """The entry point did something the suite does not accept."""


def check_message(text: str, what: str, secrets: tuple[str, ...] = ()) -> None:
    if len(text) > MAX_MESSAGE:
        raise FuzzFailure(f"{what} is {len(text):,} characters long: {text[:200]!r}...")
    for secret in secrets:
        if len(secret) >= 4 and secret in text:
            raise FuzzFailure(f"{what} shows a secret: {text!r}")


# -- flows --------------------------------------------------------------------------------


def flow_case(tmp: Path, rng: random.Random, case: FlowCase) -> str:
    folder, data = case
    if folder and not (tmp / folder).is_dir():
        shutil.copytree(ROOT / folder, tmp / folder)  # the case's subflows resolve next to it
    path = tmp / folder / "fuzz-case.yaml"
    path.write_bytes(data)
    problems = validate_paths([path])
    for problem in problems:
        text = str(problem)
        if not _PROBLEM.match(text):
            raise FuzzFailure(f"not FILE:LINE:COL: message: {text[:200]!r}")
        check_message(text[len(str(path)) :], "a problem")
    try:
        flow = load_flow(path)
    except FlowValidationError as exc:
        if not exc.problems:
            raise FuzzFailure("FlowValidationError without problems") from exc
        return "invalid"
    if problems:
        raise FuzzFailure("validate_paths found problems but load_flow accepted the flow")
    return "session-" + converse(flow, rng)


def converse(flow: Flow, rng: random.Random) -> str:
    """A few turns with hostile contact data; the session must never raise."""
    contact = {name: rng.choice(HOSTILE_CELLS) for name in ("first_name", "last_name", "note", "product")}
    session = FlowSession(flow, {"contact": contact, "caller": {"number": "+442071234567"}}, NOW)
    actions = list(session.start(NOW))
    for _ in range(8):
        if session.finished:
            break
        listen = session.listen
        phrases = list(listen.phrases) if listen is not None else []
        heard = rng.choice([*phrases, "", "x" * 5000, "\x00"]) if phrases else "yes"
        events: list[Event] = [
            Recognition(heard, rng.random()),
            DtmfDigit(rng.choice("0123456789*#")),
            NoInput(),
            PromptFinished(),
        ]
        event = rng.choice(events)
        actions.extend(session.handle(event, NOW))
    for action in actions:
        if isinstance(action, Play) and len(action.text) > MAX_PROMPT_CHARS:
            raise FuzzFailure(f"a prompt of {len(action.text):,} characters was played")
    return "finished" if session.finished else "waiting"


# -- CSV call lists -------------------------------------------------------------------------


class CsvTarget:
    """One SQLite database for every case; each case imports into a campaign of its own."""

    def __init__(self, tmp: Path) -> None:
        url = f"sqlite:///{tmp / 'fuzz.sqlite3'}"
        upgrade_database(url)
        self.engine = make_engine(url)
        self.count = 0

    def __call__(self, tmp: Path, rng: random.Random, data: bytes) -> str:
        path = tmp / "calls.csv"
        path.write_bytes(data)
        self.count += 1
        kind = rng.choice([CampaignKind.COMPLIANCE_CALLBACK, CampaignKind.RETENTION])
        spec = CampaignSpec(kind=kind, flow="flows/library/retention.yaml", region=rng.choice(["CN", ""]))
        try:
            name = f"fuzz-{self.count}"
            report = import_csv(self.engine, name, path, spec, now=NOW, rejects_fallback_dir=tmp)
        except IvrError as exc:
            check_message(str(exc).replace(str(path), "FILE"), "an import error")
            return "file-error"
        for reject in report.rejects:
            check_message(reject.format("FILE"), "a reject line")
        return "rejects" if report.rejects else "imported"


# -- settings ---------------------------------------------------------------------------------


def settings_case(tmp: Path, _rng: random.Random, case: SettingsCase) -> str:
    env, config = case
    path = None
    if config is not None:
        path = tmp / "ivr.yaml"
        path.write_bytes(config)
    others = " ".join(v for k, v in env.items() if "PASSWORD" not in k) + (config or b"").decode("latin-1")
    secrets = tuple(v for k, v in env.items() if "PASSWORD" in k and v not in others)
    try:
        settings = load_settings(path, env=env)
    except ConfigError as exc:
        check_message(str(exc).replace(str(path), "FILE"), "a settings error", secrets)
        return "config-error"
    if re.search(r"\bpassword=", repr(settings.mqtt)):
        raise FuzzFailure("repr(settings.mqtt) shows the password")
    try:
        make_engine(settings.database_url).dispose()
    except IvrError as exc:
        check_message(str(exc), "a database error", secrets)
        return "database-error"
    return "loaded"


# -- running ------------------------------------------------------------------------------------

Runner = Callable[[Path, random.Random, Any], str]


def target(name: str, tmp: Path, rng: random.Random, cases: int) -> tuple[Runner, Iterator[tuple[str, Any]]]:
    if name == "flows":
        return flow_case, flow_cases(rng, cases)
    if name == "csv":
        return CsvTarget(tmp), csv_cases(rng, cases)
    return settings_case, settings_cases(rng, cases)


def _peak_rss_mb() -> float:
    """This process's own peak resident memory. Not ``ru_maxrss``: Linux carries that across
    exec, so a harness started from a large pytest process would report pytest's size."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("target", choices=("flows", "csv", "settings"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=100)
    parser.add_argument("--case-budget", type=float, default=5.0, help="seconds one case may take")
    args = parser.parse_args(argv)
    logging.getLogger().addHandler(logging.NullHandler())  # expected warnings are not failures
    outcomes: Counter[str] = Counter()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{args.target}-") as folder:
        tmp = Path(folder)
        rng = random.Random(args.seed)
        run, cases = target(args.target, tmp, rng, args.cases)
        for name, case in cases:
            case_rng = random.Random(f"{args.seed}:{name}")
            began = time.monotonic()
            try:
                outcomes[run(tmp, case_rng, case)] += 1
            except Exception:  # the point: report anything the entry point did not handle
                print(f"FAILED case {name!r} (seed {args.seed})", file=sys.stderr)
                traceback.print_exc()
                return 1
            took = time.monotonic() - began
            if took > args.case_budget:
                print(f"FAILED case {name!r} (seed {args.seed}) took {took:.1f} s", file=sys.stderr)
                return 1
    peak_mb = _peak_rss_mb()
    summary = {
        "target": args.target,
        "cases": sum(outcomes.values()),
        "outcomes": dict(outcomes),
        "seconds": round(time.monotonic() - started, 2),
        "peak_rss_mb": round(peak_mb, 1),
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
