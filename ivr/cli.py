"""``run_ivr.py``: one command line for serving calls, dialing, flows, campaigns and recordings.

Each area registers its own sub-commands (``add_commands``) so this module stays a table.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from config.errors import ConfigError, IvrError
from config.logs import enable_crash_tracebacks

# Modules exposing ``add_commands(subparsers)``; each sets ``func(args) -> int`` on its parsers.
COMMAND_MODULES = (
    "ivr.commands",
    "ivr.supervisor_cli",
    "ivr.balancer",
    "recordings.cli",
    "flows.cli",
    "dialer.cli",
    "console.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="run_ivr.py", description="Telephony voice IVR and outbound calling engine."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    enable_crash_tracebacks()  # serve, its workers, dial, demo: a native crash leaves a traceback
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except (ConfigError, IvrError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
