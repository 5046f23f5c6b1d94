#!/usr/bin/env python3
"""Entry point: ``python run_ivr.py COMMAND ...`` (see ``--help``)."""

import sys

from ivr.cli import main

if __name__ == "__main__":
    sys.exit(main())
