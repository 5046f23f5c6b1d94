"""``run_ivr.py flows validate|test|graph`` and ``run_ivr.py chat``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from config.cli_options import add_common_options
from flows.chat import run_chat
from flows.conversation_test import discover, run_file
from flows.errors import ConversationTestError, FlowValidationError
from flows.graph import to_mermaid
from flows.loader import load_flow, validate_paths
from flows.model import Flow


def add_commands(subparsers: Any) -> None:
    """Register ``flows`` (validate, test, graph) and ``chat`` on the main parser."""
    flows = subparsers.add_parser("flows", help="validate, test and draw flow files")
    flows_sub = flows.add_subparsers(dest="flows_command", required=True, metavar="ACTION")

    validate = flows_sub.add_parser(
        "validate", help="check flow files; prints FILE:LINE:COL: message per problem"
    )
    validate.add_argument("paths", nargs="+", metavar="PATH", help="flow files or directories of them")
    validate.add_argument("--strict", action="store_true", help="fail on warnings too (exit 1)")
    add_common_options(validate)
    validate.set_defaults(func=cmd_validate)

    test = flows_sub.add_parser("test", help="run conversation test files")
    test.add_argument("paths", nargs="+", metavar="PATH", help="test files or directories of them")
    add_common_options(test)
    test.set_defaults(func=cmd_test)

    graph = flows_sub.add_parser("graph", help="print a Mermaid diagram of a flow")
    graph.add_argument("flow", metavar="FLOW", help="flow file")
    add_common_options(graph)
    graph.set_defaults(func=cmd_graph)

    chat = subparsers.add_parser("chat", help="talk to a flow in the terminal (stdin may be a pipe)")
    chat.add_argument("flow", metavar="FLOW", help="flow file")
    chat.add_argument("--contact", metavar="JSON", help='contact data, e.g. \'{"first_name": "Ana"}\'')
    chat.add_argument("--variables", metavar="JSON", help="other variables, e.g. '{\"account\": {...}}'")
    add_common_options(chat)
    chat.set_defaults(func=cmd_chat)


def cmd_validate(args: argparse.Namespace) -> int:
    """Errors and warnings, one ``FILE:LINE:COL:`` line each; exit 1 on an error (``--strict``:
    on a warning too)."""
    problems = validate_paths(args.paths, warnings=True)
    for problem in problems:
        print(problem)
    warnings = sum(problem.is_warning for problem in problems)
    failed = len(problems) > warnings or (args.strict and warnings > 0)
    if not failed:
        note = f", {warnings} warning(s)" if warnings else ""
        print(f"ok: {len(args.paths)} path(s) valid{note}", file=sys.stderr)
    return 1 if failed else 0


def cmd_test(args: argparse.Namespace) -> int:
    failed = passed = 0
    for path in discover(args.paths):
        try:
            results = run_file(path)
        except ConversationTestError as exc:
            print(f"ERROR {exc}")
            failed += 1
            continue
        for result in results:
            if result.passed:
                passed += 1
                print(result.report())
            else:
                failed += 1
                print(result.report())
    print(f"{passed} passed, {failed} failed", file=sys.stderr)
    return 1 if failed or not passed else 0


def _load_or_report(path: str) -> Flow | None:
    """The flow, or None after printing each of its problems on stderr."""
    try:
        return load_flow(path)
    except FlowValidationError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return None


def cmd_graph(args: argparse.Namespace) -> int:
    flow = _load_or_report(args.flow)
    if flow is None:
        return 1
    sys.stdout.write(to_mermaid(flow))
    return 0


def _json_arg(text: str | None, name: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"error: --{name}: invalid JSON at column {exc.colno}: {exc.msg}") from exc
    if not isinstance(value, dict):
        raise SystemExit(f"error: --{name}: expected a JSON object")
    return value


def cmd_chat(args: argparse.Namespace) -> int:
    flow = _load_or_report(args.flow)
    if flow is None:
        return 1
    variables = _json_arg(args.variables, "variables")
    contact = _json_arg(args.contact, "contact")
    if contact:
        variables["contact"] = {**variables.get("contact", {}), **contact}
    interactive = sys.stdin.isatty()

    def prompt() -> None:
        print("you> ", end="", flush=True)

    run_chat(flow, sys.stdin, print, variables=variables, prompt=prompt if interactive else None)
    return 0
