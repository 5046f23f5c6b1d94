"""What every ``campaign ...`` and ``dial`` command shares: its parser leaf and its database.

Every command opens the database from settings (``--config``, ``--data-dir``) and upgrades
its schema first, so a new release never needs a separate migration step.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy.exc import DBAPIError

from config import logs
from config.cli_options import add_common_options, settings_from_args
from config.settings import Settings
from dialer.db import database_error, open_database


def leaf(sub: Any, name: str, help_text: str, func: Any, **parser_options: Any) -> argparse.ArgumentParser:
    """A sub-command with the common options that runs ``func(args) -> int``."""
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, **parser_options)
    add_common_options(parser)
    parser.set_defaults(func=func)
    return parser


@contextmanager
def database(args: argparse.Namespace, **overrides: Any) -> Iterator[tuple[Settings, Any]]:
    """Settings and the upgraded database for one command; the engine is disposed after.

    A database failure (a lock or statement timeout, a lost server) becomes one line naming
    the command, e.g. ``campaign status: gave up after waiting 30 s for a lock ...``.
    """
    settings = settings_from_args(args, **overrides)
    logs.configure(settings.log_level)
    engine = open_database(settings.database_url, settings.database, command_name(args))
    try:
        yield settings, engine
    except DBAPIError as exc:
        raise database_error(exc, command_name(args), settings.database) from exc
    finally:
        engine.dispose()


def command_name(args: argparse.Namespace) -> str:
    parts = [getattr(args, name, None) for name in ("command", "campaign_command", "dnc_command")]
    return " ".join(str(part) for part in parts if part)
