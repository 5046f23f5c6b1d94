"""The options every command shares, so ``--config`` and ``--data-dir`` mean the same everywhere."""

from __future__ import annotations

import argparse
from typing import Any

from config.settings import Settings, load_settings


def add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", metavar="FILE", help="settings file (default: $IVR_CONFIG, else built-in defaults)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the database, recordings and caches live")


def settings_from_args(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Load settings for a parsed command line; ``overrides`` use dotted keys (``sip.port``)."""
    merged: dict[str, Any] = {"data_dir": getattr(args, "data_dir", None)}
    merged.update({key.replace("__", "."): value for key, value in overrides.items()})
    return load_settings(getattr(args, "config", None), overrides=merged)
