"""Import speed of the call-list importer on SQLite (target: 100,000 rows in < 20 s).

Generates a CSV of valid Chinese mobile numbers (with 1 % bad rows and 1 % in-file
duplicates), imports it into a fresh SQLite database, imports it again (idempotence: must
add nothing), and exports the campaign. Prints one table.

    .venv/bin/python bench/bench_import.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from dialer.db import make_engine, upgrade_database
from dialer.export import export_to_file
from dialer.importer import CampaignSpec, import_csv
from dialer.models import CampaignKind

FLOW = "flows/library/callback.yaml"
PREFIXES = ("138", "139", "137", "136", "135", "150", "151", "186", "188", "199")


def write_csv(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    base = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
    used: list[str] = []
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["phone", "first_name", "last_name", "cooling_off_end", "product", "amount"])
        for i in range(rows):
            roll = rng.random()
            if roll < 0.01:
                phone = f"{rng.randint(1000, 99999)}"  # too short: rejected
            elif roll < 0.02 and used:
                phone = rng.choice(used)  # duplicate in the file: rejected
            else:
                phone = f"{PREFIXES[i % len(PREFIXES)]}{i:08d}"
                used.append(phone)
            coe = base + timedelta(minutes=rng.randint(0, 60 * 24 * 7))
            amount = rng.randint(1, 9) * 1000
            writer.writerow([phone, f"First{i}", f"Last{i}", coe.isoformat(), "Fund A", amount])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    spec = CampaignSpec(kind=CampaignKind.COMPLIANCE_CALLBACK, flow=FLOW, region="CN")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = folder / "calls.csv"
        started = time.perf_counter()
        write_csv(path, args.rows)
        generate_s = time.perf_counter() - started
        url = f"sqlite:///{folder / 'bench.sqlite3'}"
        upgrade_database(url)
        engine = make_engine(url)
        now = datetime(2025, 3, 1, tzinfo=UTC)
        started = time.perf_counter()
        first = import_csv(engine, "bench", path, spec, now=now)
        import_s = time.perf_counter() - started
        started = time.perf_counter()
        again = import_csv(engine, "bench", path, spec, now=now)
        reimport_s = time.perf_counter() - started
        started = time.perf_counter()
        exported = export_to_file(engine, "bench", folder / "out.csv")
        export_s = time.perf_counter() - started
        engine.dispose()
        size_mb = path.stat().st_size / 1e6
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rows = [
        ("step", "rows", "seconds", "rows/s"),
        ("---", "---", "---", "---"),
        (
            f"generate CSV ({size_mb:.1f} MB)",
            str(args.rows),
            f"{generate_s:.2f}",
            f"{args.rows / generate_s:,.0f}",
        ),
        (
            "import (SQLite)",
            f"{first.imported} imported, {first.rejected_rows} rejected",
            f"{import_s:.2f}",
            f"{args.rows / import_s:,.0f}",
        ),
        (
            "re-import (no change)",
            f"{again.imported} imported, {again.unchanged} unchanged",
            f"{reimport_s:.2f}",
            f"{args.rows / reimport_s:,.0f}",
        ),
        ("export", str(exported), f"{export_s:.2f}", f"{exported / export_s:,.0f}"),
    ]
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"peak RSS {peak_mb:.0f} MB; target: import < 20 s -> {'met' if import_s < 20 else 'MISSED'}")
    assert again.imported == 0 and again.unchanged == first.imported


if __name__ == "__main__":
    main()
