"""``run_ivr.py users ...`` (console accounts) and ``run_ivr.py console`` (the web console), and
the console started beside ``serve`` when ``console.enabled`` is set.

Passwords are read with ``getpass`` (twice) or as one line from stdin (``--password-stdin``);
they never appear in arguments, logs or output.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, Any

from config import logs
from config.cli_options import add_common_options, settings_from_args
from config.logs import log_event
from config.settings import Settings
from console.roles import PERMISSIONS, ROLES
from console.users import UserError, UserStore
from dialer.cli_support import database
from dialer.models import utcnow

_LOG = logging.getLogger("ivr.console")
_AUDIT = logging.getLogger("ivr.console.audit")
RUN_IVR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "run_ivr.py")


def add_commands(subparsers: Any) -> None:
    users = subparsers.add_parser("users", help="console accounts: add, list, disable, change password")
    sub = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = sub.add_parser("add", help="add a console user (password prompted twice, or --password-stdin)")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--role", required=True, choices=sorted(ROLES))
    add.add_argument(
        "--grant",
        action="append",
        default=[],
        choices=sorted(PERMISSIONS),
        metavar="PERM",
        help=f"an extra permission beyond the role's (repeatable): {', '.join(sorted(PERMISSIONS))}",
    )
    add.add_argument("--password-stdin", action="store_true", help="read the password as one line from stdin")
    listing = sub.add_parser("list", help="every console user with role, grants and whether disabled")
    disable = sub.add_parser("disable", help="stop a user from logging in (the account is kept)")
    disable.add_argument("name", metavar="NAME")
    passwd = sub.add_parser("passwd", help="set a user's password")
    passwd.add_argument("name", metavar="NAME")
    passwd.add_argument(
        "--password-stdin", action="store_true", help="read the password as one line from stdin"
    )
    for parser in (add, listing, disable, passwd):
        add_common_options(parser)
        parser.set_defaults(func=cmd_users)

    console = subparsers.add_parser(
        "console", help="the web console for managers, auditors, admins, supervisors"
    )
    add_common_options(console)
    console.add_argument("--bind", metavar="ADDR", help="address to listen on (console.bind, 127.0.0.1)")
    console.add_argument("--port", type=int, metavar="N", help="port (console.port, 8080)")
    console.set_defaults(func=cmd_console)


def read_password(from_stdin: bool, stdin: IO[str] | None = None) -> str:
    """The new password: one line of stdin, or typed twice at a prompt that does not echo."""
    if from_stdin:
        line = (stdin or sys.stdin).readline()
        return line.rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ; nothing was changed")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    with database(args) as (_, engine):
        store = UserStore(engine)
        action = args.users_command
        if action == "list":
            for user in store.users():
                grants = ",".join(sorted(user.grants)) or "-"
                print(f"{user.name}\t{user.role}\t{grants}\t{'disabled' if user.disabled else 'active'}")
            return 0
        if action == "disable":
            store.disable(args.name)
        elif action == "add":
            store.add(
                args.name, args.role, read_password(args.password_stdin), utcnow(), frozenset(args.grant)
            )
        else:
            store.set_password(args.name, read_password(args.password_stdin), utcnow())
    log_event(f"console.user_{action}", logger=_AUDIT, user=args.name, by=_operator())
    done = {"add": "added", "disable": "disabled", "passwd": "password changed"}[action]
    print(f"user {args.name}: {done}")
    return 0


def _operator() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return f"uid {os.getuid()}"


def cmd_console(args: argparse.Namespace) -> int:
    overrides = {"console.bind": args.bind, "console.port": args.port}
    settings = settings_from_args(args, **{k.replace(".", "__"): v for k, v in overrides.items()})
    logs.configure(settings.log_level)
    return serve_console(settings)


def serve_console(settings: Settings) -> int:
    """Run the console until SIGINT/SIGTERM (uvicorn prints the address it listens on)."""
    # Loaded only when the console runs, so other commands do not pay for the web stack.
    import uvicorn

    from console.app import create_app, open_context

    context = open_context(settings)
    app = create_app(context)
    config = uvicorn.Config(
        app,
        host=settings.console.bind,
        port=settings.console.port,
        log_config=None,
        access_log=False,
        proxy_headers=False,
        lifespan="on",  # the app closes what its pages started (the live feed) on shutdown
        timeout_graceful_shutdown=5,  # live pages stream for minutes: do not wait for them to end
    )
    server = uvicorn.Server(config)
    log_event("console.started", logger=_LOG, bind=settings.console.bind, port=settings.console.port)
    try:
        server.run()
    finally:
        context.engine.dispose()
    return 0


@contextmanager
def console_beside_serve(args: argparse.Namespace) -> Iterator[None]:
    """With ``console.enabled``, the console runs in its own process next to ``serve`` (so page
    work never competes with the call threads) and stops when serve returns."""
    settings = settings_from_args(args)
    if not settings.console.enabled:
        yield
        return
    command = [sys.executable, RUN_IVR, "console"]
    for flag in ("config", "data_dir"):
        value = getattr(args, flag, None)
        if value:
            command += [f"--{flag.replace('_', '-')}", str(value)]
    child = subprocess.Popen(command, stdin=subprocess.DEVNULL)
    log_event("serve.console_started", logger=_LOG, pid=child.pid, port=settings.console.port)
    try:
        yield
    finally:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
