"""Imports only point down: the layer contract of docs/architecture.md, checked on every module.

Layers, top to bottom: 4 the composition root (CLIs, ``serve``, the worker front); 3 adapters
(pjsua2, asyncio sessions, MQTT, the database, files); 2 the call core (sans-I/O call logic and
SIP policy); 1 the domain (media, flows, recordings, dialer policy); 0 the foundation
(``config``: settings, the error tree, logging). A module may import its own layer or any
layer below, never one above, at module level or inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("config", "media", "flows", "recordings", "dialer", "ivr", "supervision", "console")

LAYER_NAMES = {0: "foundation", 1: "domain", 2: "call core", 3: "adapter", 4: "composition root"}
EXPLICIT: dict[str, int] = {
    # composition root
    "ivr.cli": 4,
    "ivr.commands": 4,
    "ivr.supervisor_cli": 4,
    "ivr.server": 4,
    "ivr.front": 4,
    "ivr.balancer": 4,
    "ivr.worker_pool": 4,
    "ivr.drain": 4,
    "ivr.demo": 4,
    "dialer.cli": 4,
    "dialer.campaign_cli": 4,
    "dialer.campaign_admin_cli": 4,
    "flows.cli": 4,
    "flows.chat": 4,
    "recordings.cli": 4,
    "recordings.cli_common": 4,
    "recordings.cli_search": 4,
    "recordings.cli_proof": 4,
    "recordings.cli_custody": 4,
    "recordings.qa_cli": 4,
    "console.cli": 4,
    # the call core: pure call logic and SIP policy
    "ivr.call_core": 2,
    "ivr.call_state": 2,
    "ivr.call_media": 2,
    "ivr.call_actions": 2,
    "ivr.call_vocabulary": 2,
    "ivr.caller_transcript": 2,
    "ivr.prompt_queue": 2,
    "ivr.machine_screening": 2,
    "ivr.admission": 2,
    "ivr.sdp_offer": 2,
    "ivr.sip_message_check": 2,
    "ivr.networks": 2,
    "ivr.restart_backoff": 2,
    "ivr.balancer_config": 2,
    "ivr.node_health": 2,
    "ivr.media_bridge": 2,
    "ivr.sip_events": 2,
    "ivr.sip_status": 2,
    "supervision.call_watch": 2,
    # dialer policy (pure) is domain; the rest of the dialer is its data adapter
    "dialer.call_result": 1,
    "dialer.callee_zone": 1,
    "dialer.calling_hours": 1,
    "dialer.pacing": 1,
    "dialer.retry_policy": 1,
    "dialer.scheduler": 1,
    "dialer.rates": 1,
    "dialer.call_list_columns": 1,
}
# supervision: alert rules and signals are domain (pure); its adapters are named in EXPLICIT.
# console: the web application is an adapter over the stores; its CLI is composition root.
PACKAGE_DEFAULT = {
    "config": 0,
    "media": 1,
    "flows": 1,
    "recordings": 1,
    "dialer": 3,
    "ivr": 3,
    "supervision": 1,
    "console": 3,
}


def layer_of(module: str) -> int:
    parts = module.split(".")
    for cut in range(len(parts), 0, -1):
        name = ".".join(parts[:cut])
        if name in EXPLICIT:
            return EXPLICIT[name]
    return PACKAGE_DEFAULT[parts[0]]


def project_modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
            modules[".".join(parts)] = path
    return modules


def imported(path: Path, module: str) -> list[tuple[int, str]]:
    """(line, module) for every project import in ``path``, wherever it stands."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.append((node.lineno, target))
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def test_every_import_points_down() -> None:
    modules = project_modules()
    assert len(modules) > 100, "the walk found the project's modules"
    violations: list[str] = []
    for module, path in sorted(modules.items()):
        here = layer_of(module)
        for line, target in imported(path, module):
            there = layer_of(target)
            if there > here:
                violations.append(
                    f"{path.relative_to(ROOT)}:{line}: {module} ({LAYER_NAMES[here]}) imports "
                    f"{target} ({LAYER_NAMES[there]})"
                )
    assert violations == [], "imports pointing up:\n" + "\n".join(violations)


def test_every_explicit_layer_names_a_module_that_exists() -> None:
    modules = project_modules()
    assert sorted(name for name in EXPLICIT if name not in modules) == []


@pytest.mark.parametrize(
    ("module", "layer"),
    [
        ("config.errors", 0),
        ("media.amd", 1),
        ("ivr.call_core", 2),
        ("ivr.call_media", 2),
        ("ivr.call_actions", 2),
        ("ivr.call_state", 2),
        ("ivr.sip_agent", 3),
        ("ivr.sip_calls", 3),
        ("ivr.call_session", 3),
        ("ivr.call_recording", 3),
        ("ivr.call_workers", 3),
        ("ivr.call_reports", 3),
        ("ivr.cli", 4),
    ],
)
def test_layer_assignment(module: str, layer: int) -> None:
    assert layer_of(module) == layer


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    path = tmp_path / "fake.py"
    path.write_text("def f() -> None:\n    from ivr.sip_agent import SipAgent\n")
    ((line, target),) = imported(path, "media.fake")
    assert (line, target) == (2, "ivr.sip_agent") and layer_of(target) > layer_of("media.fake")
