"""The ``supervise`` command: ask the running ``serve`` to ring a supervisor into a live call."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Any

from argon2 import PasswordHasher

from config.cli_options import add_common_options, settings_from_args
from ivr.supervisor_client import SupervisionError, roster_path, send_request, store_pin_hash
from recordings.access_log import current_accessor
from supervision.feature_code import PIN_MAX, PIN_MIN
from supervision.supervisor_modes import DTMF_KEYS, MODES


def add_commands(sub: Any) -> None:
    keys = ", ".join(f"{key} {mode}" for key, mode in DTMF_KEYS.items())
    parser = sub.add_parser(
        "supervise",
        help="ring a supervisor's phone into a live call (listen, barge in, take over)",
        description=f"Ring the supervisor's SIP phone into call CALL_ID. On that phone: {keys}. "
        "The user must hold the supervisor role and the phone must be registered to them in "
        "<data dir>/supervisors.yaml (docs/supervision.md); every use is in `recordings audit`.",
    )
    add_common_options(parser)
    parser.add_argument(
        "call_id", metavar="CALL_ID", help="the call's id (call.connected log line, MQTT topic)"
    )
    parser.add_argument("--mode", choices=MODES, default="listen", help="mode to start in (default: listen)")
    parser.add_argument(
        "--uri", required=True, metavar="SIP_URI", help="the supervisor's phone, e.g. sip:alice@pbx"
    )
    parser.add_argument("--as", dest="user", required=True, metavar="USER", help="the supervisor's user name")
    parser.add_argument("--json", action="store_true", help="print the engine's reply as JSON")
    parser.set_defaults(func=run_supervise)
    pin = sub.add_parser(
        "supervise-pin",
        help="set the PIN a supervisor keys after dialling the feature code (*77<short id>)",
        description="Store USER's dial-in PIN (4-12 digits) in <data dir>/supervisors.yaml as an "
        "argon2 hash; the PIN is read from the terminal (or one line of stdin) and never stored.",
    )
    add_common_options(pin)
    pin.add_argument("user", metavar="USER", help="a user already in the supervisor roster")
    pin.set_defaults(func=run_set_pin)


def run_supervise(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    who = current_accessor(args.user)
    request = {
        "call_id": args.call_id,
        "mode": args.mode,
        "uri": args.uri,
        "user": who.actor,
        "os_user": who.os_user,
        "host": who.host,
        "tty": who.tty,
        "remote": who.remote or os.environ.get("SSH_CLIENT", ""),
    }
    reply = send_request(settings.data_path, request)
    if args.json:
        print(json.dumps(reply))
    elif reply.get("ok"):
        keys = ", ".join(f"{key} {mode}" for key, mode in DTMF_KEYS.items())
        print(f"ringing {reply.get('ringing')} into call {args.call_id} ({args.mode}); keys: {keys}")
    else:
        print(f"error: {reply.get('error')}", file=sys.stderr)
    return 0 if reply.get("ok") else 1


def run_set_pin(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    if sys.stdin.isatty():
        pin = getpass.getpass(f"PIN for {args.user} ({PIN_MIN}-{PIN_MAX} digits): ")
        if getpass.getpass("again: ") != pin:
            print("error: the two PINs differ", file=sys.stderr)
            return 1
    else:
        pin = sys.stdin.readline().strip()
    if not (pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        print(f"error: a PIN is {PIN_MIN}-{PIN_MAX} digits (0-9)", file=sys.stderr)
        return 1
    try:
        store_pin_hash(roster_path(settings.data_path), args.user, PasswordHasher().hash(pin))
    except SupervisionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"PIN set for {args.user}")
    return 0
