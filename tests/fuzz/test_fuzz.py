"""The fuzz suite: mutated flow YAML, CSV call lists and settings, each target in a process
of its own with a capped address space, all three at once, in well under a minute.

Every case must end in a documented outcome (a located problem, a short error message, a
polite end of the call); see ``fuzz_harness.py``. ``FUZZ_SEED`` picks other cases (a
failure prints the case name; rerun ``python -m tests.fuzz.fuzz_harness TARGET --seed N``
to replay it) and ``FUZZ_CASES`` changes how many per target.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("FUZZ_SEED", "20260301"))
CASES = int(os.environ.get("FUZZ_CASES", "400"))
ADDRESS_SPACE = 3 << 30  # a runaway allocation fails inside the harness instead of swapping
MAX_RSS_MB = 400
TIME_LIMIT_S = 55


def _cap_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def test_fuzz_flows_csv_and_settings_end_cleanly_in_bounded_time_and_memory(tmp_path: Path) -> None:
    started = time.monotonic()
    runs: dict[str, subprocess.Popen[str]] = {}
    for target in ("flows", "csv", "settings"):
        workdir = tmp_path / target  # relative paths a case names (data_dir: x) stay in here
        workdir.mkdir()
        runs[target] = subprocess.Popen(
            [sys.executable, "-m", "tests.fuzz.fuzz_harness", target, f"--seed={SEED}", f"--cases={CASES}"],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            preexec_fn=_cap_memory,  # noqa: PLW1509 (no threads started yet in this test)
        )
    summaries = {}
    for target, proc in runs.items():
        remaining = max(1.0, TIME_LIMIT_S - (time.monotonic() - started))
        try:
            out, err = proc.communicate(timeout=remaining)
        except subprocess.TimeoutExpired:
            for other in runs.values():
                other.kill()
            raise AssertionError(f"fuzz target {target} ran past {TIME_LIMIT_S} s") from None
        assert proc.returncode == 0, f"fuzz target {target} (seed {SEED}) failed:\n{err[-6000:]}"
        summaries[target] = json.loads(out.strip().splitlines()[-1])
    for summary in summaries.values():
        assert summary["cases"] >= CASES, summary
        assert summary["peak_rss_mb"] < MAX_RSS_MB, summary
    assert len(summaries["flows"]["outcomes"]) >= 2, summaries["flows"]  # sessions ran too
    assert time.monotonic() - started < TIME_LIMIT_S
