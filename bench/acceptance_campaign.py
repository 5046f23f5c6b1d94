"""Acceptance run of issue 14: a campaign with random callees, checked by wall clock.

Builds ~40 compliance-callback contacts in five time zones (one campaign per zone, as a
manager runs one per region), some on the do-not-call list, some whose deadline passes during
the run; two zones' calling hours close during the run and one's open during it. Each contact
gets a callee chosen by a seeded RNG (yes, no twice, no then yes, "call me back", busy, no
answer, answering machine: bench/acceptance_callees.py), and real ``run_ivr.py dial``
processes call them on the real clock: one dialer on SQLite, then two on PostgreSQL sharing a
trunk limit; one dialer is stopped with SIGINT mid-run and started again. Then it checks,
from what the callees saw and from ``campaign export`` / ``campaign status --json``:
0 INVITEs outside callee-local hours, after a deadline or to a do-not-call number, 0 declines
without the double-check, 0 attempts counted that the callees did not get (or that we
cancelled), never more lines in use than the trunk limit, and the rates as defined.

    .venv/bin/python bench/acceptance_campaign.py --db sqlite --db postgresql --out /tmp/acc

Prints one JSON report per run and exits 1 when a check fails. Takes ~8 minutes per run.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import acceptance_checks as checks  # noqa: E402
from bench.acceptance_callees import BEHAVIOURS, CalleeCall, SipRouter, read_trace, start_callee  # noqa: E402

FLOW = ROOT / "flows" / "library" / "compliance_callback.yaml"
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
RING_TIMEOUT_S = 8.0
MARGIN = timedelta(seconds=90)
COLUMNS = ["phone", "first_name", "last_name", "timezone", "cooling_off_end", "product", "amount"]
COLUMNS += ["purchase_date", "date_of_birth", "id_last4"]
PURCHASE = ["the Acme Private Credit Fund", "25000", "2026-11-10", "1980-07-04", "5521"]
WATCH = ("campaign", "status", "--watch", "--json", "--interval", "5", "--data-dir")
HARD_CHECKS: tuple[str, ...] = ("outside_hours", "after_deadline", "to_dnc", "attempt_mismatches")
HARD_CHECKS += ("bad_results", "declined_unconfirmed", "declined_wrong_callee", "rate_mismatches")
WEIGHTS = {"yes": 2, "no_twice": 2, "no_once": 2, "call_me_back": 1, "busy": 2, "no_answer": 2, "machine": 2}
# zone -> (number prefix, digits to add, hours plan: seconds after T0 the hours open / close)
ZONES: dict[str, tuple[str, int, float | None, float | None]] = {
    "America/New_York": ("+1202555", 4, None, 110.0),
    "Asia/Kolkata": ("+9198765", 5, None, 220.0),
    "Asia/Shanghai": ("+861381234", 4, 70.0, None),
    "Europe/London": ("+4420794600", 2, None, None),
    "Australia/Sydney": ("+61412345", 3, None, None),
}


def run_ivr(data_dir: Path, env: dict[str, str], *args: str, check: bool = True) -> str:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "run_ivr.py"), *args, "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, **env},
        timeout=300,
        check=False,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"run_ivr.py {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def _minute(moment: datetime, up: bool) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor + timedelta(minutes=1) if up and floor != moment else floor


def hours_for(zone: str, t0: datetime, opens: float | None, closes: float | None) -> str:
    """Callee-local hours that open ``opens`` s after t0 (else 2 h before) and close ``closes``
    s after it (else 2 h after), on one local day."""
    tz = ZoneInfo(zone)
    start = _minute((t0 + timedelta(seconds=opens)).astimezone(tz), True) if opens else None
    end = _minute((t0 + timedelta(seconds=closes)).astimezone(tz), True) if closes else None
    first = start or (t0 - timedelta(hours=2)).astimezone(tz)
    last = end or (t0 + timedelta(hours=2)).astimezone(tz)
    start_text = f"{first:%H:%M}" if start or first.date() == last.date() else "00:00"
    end_text = f"{last:%H:%M}" if end or first.date() == last.date() else "24:00"
    if start is None and first.date() != last.date() and end is not None:
        start_text = "00:00"
    return f"{start_text}-{end_text}"


def plan_contacts(rng: random.Random, count: int, t0: datetime) -> list[checks.Planned]:
    names = [b.name for b in BEHAVIOURS]
    person = {b.name: b.person for b in BEHAVIOURS}
    plan = []
    per_zone = count // len(ZONES)
    dnc = set(rng.sample(range(per_zone * len(ZONES)), 2))
    for z, (zone, (prefix, digits, opens, closes)) in enumerate(ZONES.items()):
        hours = hours_for(zone, t0, opens, closes)
        for i in range(per_zone):
            n = z * per_zone + i
            behaviour = rng.choices(names, [WEIGHTS[x] for x in names])[0]
            soon = rng.random() < 0.3
            deadline = t0 + timedelta(seconds=rng.uniform(150, 330)) if soon else t0 + timedelta(hours=20)
            phone = f"{prefix}{(17 + i * 7) % 10**digits:0{digits}d}"
            campaign = "acc_" + zone.split("/")[1].lower()
            planned = checks.Planned(
                phone, campaign, zone, hours, deadline, MARGIN, behaviour, person[behaviour], n in dnc
            )
            plan.append(planned)
    return plan


def import_campaigns(data_dir: Path, env: dict[str, str], plan: list[checks.Planned], work: Path) -> None:
    for p in plan:
        if p.dnc:
            run_ivr(data_dir, env, "campaign", "dnc", "add", p.phone, "--reason", "asked before the import")
    for name in sorted({p.campaign for p in plan}):
        mine = [p for p in plan if p.campaign == name]
        path = work / f"{name}.csv"
        with path.open("w", newline="") as handle:
            out = csv.writer(handle)
            out.writerow(COLUMNS)
            for n, p in enumerate(mine):
                cooling_off_end = (p.deadline - timedelta(hours=24)).isoformat()
                out.writerow([p.phone, "Sam", f"Lee{n}", p.zone, cooling_off_end, *PURCHASE])
        retry = ["busy=20s", "no_answer=20s", "answered_machine=25s", "network_failure=20s"]
        args = ["--retry", f"deadline_margin={int(MARGIN.total_seconds())}s"]
        for rule in retry:
            args += ["--retry", rule]
        run_ivr(
            data_dir,
            env,
            "campaign",
            "import",
            name,
            str(path),
            "--kind",
            "compliance_callback",
            "--flow",
            str(FLOW),
            "--hours",
            mine[0].hours,
            "--max-attempts",
            "4",
            "--retry-outcome",
            "no_decision=30s",
            *args,
        )
        run_ivr(data_dir, env, "campaign", "start", name)


def start_dialer(data_dir: Path, env: dict[str, str], n: int, log: Path) -> subprocess.Popen[bytes]:
    first = 30000 + os.getpid() % 40 * 500 + n * 250
    rtp = {"IVR_SIP__RTP_PORT_START": str(first), "IVR_SIP__RTP_PORT_RANGE": "200"}
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "run_ivr.py"), "dial", "--data-dir", str(data_dir)],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **env, **rtp, "PYTHONUNBUFFERED": "1"},
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 240) -> int:
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return -9


def run(db: str, args: argparse.Namespace) -> dict[str, Any]:
    work = Path(args.out) / db
    work.mkdir(parents=True, exist_ok=False)
    data_dir = work / "data"
    env: dict[str, str] = {}
    schema = ""
    if db == "postgresql":
        from sqlalchemy import create_engine, text

        schema = f"acceptance_{uuid.uuid4().hex[:10]}"
        with create_engine(PG_ADMIN).begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        env["IVR_DATABASE__URL"] = f"{PG_ADMIN}?options=-csearch_path%3D{schema}"
    dialers = 1 if db == "sqlite" else 2
    t0 = datetime.now(UTC) + timedelta(seconds=75)
    plan = plan_contacts(random.Random(args.seed), args.contacts, t0)
    by_phone = {p.phone: p for p in plan}
    callees = {b.name: start_callee(b, work / "callees" / b.name) for b in BEHAVIOURS}
    router = SipRouter({p.phone: callees[p.behaviour][1] for p in plan})
    router.start()
    import_campaigns(data_dir, env, plan, work)
    env |= {
        "IVR_DIALER__TRUNK_URI": f"sip:{{number}}@127.0.0.1:{router.port}",
        "IVR_DIALER__RING_TIMEOUT_S": str(RING_TIMEOUT_S),
        "IVR_DIALER__MAX_CONCURRENT_CALLS": str(args.lines),
        "IVR_DIALER__TRUNK_LINES": str(args.lines),
        "IVR_DIALER__EXPECTED_CALL_S": "80",
    }
    time.sleep(max((t0 - datetime.now(UTC)).total_seconds(), 0))
    started = datetime.now(UTC)
    watch_out = (work / "status_watch.jsonl").open("wb")
    watcher = subprocess.Popen(
        [sys.executable, str(ROOT / "run_ivr.py"), *WATCH, str(data_dir)],
        cwd=ROOT,
        stdout=watch_out,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **env},
    )
    procs = [start_dialer(data_dir, env, n, work / f"dial{n}.log") for n in range(dialers)]
    time.sleep(args.sigint_at)
    sigint_rc = stop(procs[0])  # mid-run, calls in progress: nothing may be burned
    sigint_at = datetime.now(UTC)
    procs[0] = start_dialer(data_dir, env, 0, work / "dial0.log")
    time.sleep(max(args.run_s - (datetime.now(UTC) - started).total_seconds(), 0))
    codes = [stop(p) for p in procs]
    ended = datetime.now(UTC)
    stop(watcher, 30)
    watch_out.close()
    router.stop()
    for proc, _port in callees.values():
        proc.kill()
        proc.wait()
    report = collect(work, data_dir, env, plan, by_phone, schema, (started, ended, sigint_at), args)
    report["dialer_exit_codes"] = [sigint_rc, *codes]
    report["unrouted_invites"] = len(router.unrouted)
    return report


def collect(  # noqa: PLR0917  (one run's facts)
    work: Path,
    data_dir: Path,
    env: dict[str, str],
    plan: list[checks.Planned],
    by_phone: dict[str, checks.Planned],
    schema: str,
    times: tuple[datetime, datetime, datetime],
    args: argparse.Namespace,
) -> dict[str, Any]:
    started, ended, sigint_at = times
    calls: list[CalleeCall] = []
    for b in BEHAVIOURS:
        calls.extend(read_trace(work / "callees" / b.name / "messages.log").values())
    by_number: dict[str, list[CalleeCall]] = {}
    for call in calls:
        by_number.setdefault(call.number, []).append(call)
    rows: dict[str, dict[str, str]] = {}
    for name in sorted({p.campaign for p in plan}):
        out = work / f"{name}.export.csv"
        run_ivr(data_dir, env, "campaign", "export", name, "--output", str(out))
        with out.open(newline="") as handle:
            rows |= {r["phone"]: r for r in csv.DictReader(handle)}
    statuses = json.loads(run_ivr(data_dir, env, "campaign", "status", "--json"))
    recordings = {r["call_id"]: r for r in json.loads(run_ivr(data_dir, env, "recordings", "list", "--json"))}
    raw_peak, raw_at = checks.max_lines(calls, ended)
    peak, peak_at = checks.max_lines(calls, ended, checks.JITTER)
    redraws = (work / "status_watch.jsonl").read_text().splitlines()
    watched = [json.loads(line) for line in redraws if line.strip()]
    shown_lines = max((sum(c["lines_in_use"] for c in doc) for doc in watched), default=0)
    rate_problems: list[str] = []
    rates: dict[str, Any] = {}
    for status in statuses:
        mine = [r for phone, r in rows.items() if by_phone[phone].campaign == status["name"]]
        recomputed = checks.export_rates(mine, set(status["success_outcomes"]))
        rate_problems += checks.rate_mismatches(status, recomputed)
        planned = {k: p for k, p in by_phone.items() if p.campaign == status["name"]}
        truth = checks.truth_rates(by_number, planned, RING_TIMEOUT_S)
        rates[status["name"]] = {"status": status["rates"], "export": recomputed, "callees": truth}
    report = {
        "db": "postgresql" if schema else "sqlite",
        "dialers": 2 if schema else 1,
        "trunk_lines": args.lines,
        "started": started.isoformat(),
        "ended": ended.isoformat(),
        "sigint_at": sigint_at.isoformat(),
        "contacts": len(plan),
        "behaviours": {b.name: sum(p.behaviour == b.name for p in plan) for b in BEHAVIOURS},
        "outcomes": _count(r["outcome"] or "(open)" for r in rows.values()),
        "outcomes_by_callee": _count(
            f"{by_phone[k].behaviour}: {r['outcome'] or '(open)'}" for k, r in rows.items()
        ),
        "last_results": _count(r["last_result"] or "(none)" for r in rows.values()),
        **checks.check_invites(calls, by_phone),
        **checks.check_attempts(by_number, rows, by_phone, RING_TIMEOUT_S),
        **checks.check_declines(rows, by_phone, recordings),
        "expired_after_last_start": checks.check_expiry(rows, by_phone),
        "max_lines_seen_by_callees": peak,
        "max_lines_at": peak_at,
        "max_lines_raw": [raw_peak, raw_at],
        "max_lines_in_status": shown_lines,
        "status_redraws": len(watched),
        "rate_mismatches": rate_problems,
        "rates": rates,
        "load_avg": os.getloadavg(),
    }
    failed = [k for k in HARD_CHECKS if report[k]]
    if peak > args.lines:
        failed.append("max_lines_seen_by_callees")
    report["failed"] = failed
    report["max_lines_in_dialer_records"] = dialer_lines(env, data_dir)
    if schema:
        from sqlalchemy import create_engine, text

        with create_engine(PG_ADMIN).begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
    return report


def dialer_lines(env: dict[str, str], data_dir: Path) -> int:
    """The most calls at once by the dialers' own records (attempts: INVITE to end)."""
    from sqlalchemy import create_engine, text

    url = env.get("IVR_DATABASE__URL") or f"sqlite:///{data_dir / 'ivr.sqlite3'}"
    with create_engine(url).connect() as conn:
        rows = conn.execute(
            text("SELECT invite_at, ended_at FROM attempts WHERE invite_at IS NOT NULL")
        ).all()
    edges: list[tuple[datetime, int]] = []
    for invite_at, ended_at in rows:
        for moment, step in ((invite_at, 1), (ended_at, -1)):
            at = datetime.max.replace(tzinfo=UTC) if moment is None else datetime.fromisoformat(str(moment))
            edges.append((at if at.tzinfo else at.replace(tzinfo=UTC), step))
    live = peak = 0
    for _, step in sorted(edges, key=lambda e: (e[0], e[1])):
        live += step
        peak = max(peak, live)
    return peak


def _count(values: Any) -> dict[str, int]:
    found: dict[str, int] = {}
    for value in values:
        found[value] = found.get(value, 0) + 1
    return dict(sorted(found.items()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", action="append", choices=["sqlite", "postgresql"], help="(repeatable)")
    parser.add_argument("--out", required=True, help="a new directory for traces, logs and exports")
    parser.add_argument("--seed", type=int, default=14)
    parser.add_argument("--contacts", type=int, default=40)
    parser.add_argument("--lines", type=int, default=3, help="trunk lines (shared by every dialer)")
    parser.add_argument("--run-s", type=float, default=420.0, help="seconds the dialers run")
    parser.add_argument("--sigint-at", type=float, default=80.0, help="SIGINT a dialer then; restart")
    args = parser.parse_args()
    os.environ["TZ"] = "UTC"  # sipp stamps its message trace in local time
    time.tzset()
    failed = False
    for db in args.db or ["sqlite", "postgresql"]:
        report = run(db, args)
        print(json.dumps(report, indent=2, default=str), flush=True)
        (Path(args.out) / db / "report.json").write_text(json.dumps(report, indent=2, default=str))
        failed |= bool(report["failed"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
