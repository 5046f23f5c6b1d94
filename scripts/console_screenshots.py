#!/usr/bin/env python3
"""Refresh the console screenshots in docs/console/ by running the browser tests with
``CONSOLE_SCREENSHOTS_DIR`` set: each test saves the pages it visits (see
``tests/browser/conftest.py:screenshot``). Needs Chromium at /usr/bin/chromium.

    .venv/bin/python scripts/console_screenshots.py [TEST_FILE ...]
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = ("tests/browser",)


def main(argv: list[str]) -> int:
    target = ROOT / "docs" / "console"
    target.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "CONSOLE_SCREENSHOTS_DIR": str(target)}
    tests = argv or list(DEFAULT_TESTS)
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", *tests], cwd=ROOT, env=env, check=False)
    for png in sorted(target.glob("*.png")):
        print(png.relative_to(ROOT))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
