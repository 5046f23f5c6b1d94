"""The flows the console serves and edits: which files, their version history, their graph and
their conversation tests, without any HTML.

A flow is a ``NAME.yaml`` directly in the flows folder (the files ``serve --flow`` points at);
its published versions live under the data folder (``flow-versions/NAME``), never beside the
served file, so an admin's history is not mixed with the shipped library.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from starlette.exceptions import HTTPException

from console.web import ConsoleContext
from flows.conversation_test import CaseResult, run_file
from flows.errors import ConversationTestError, FlowValidationError, Problem
from flows.graph import to_mermaid
from flows.loader import load_flow
from flows.versions import FlowVersions
from flows.yaml_source import read_marked

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,99}$")
HISTORY_FOLDER = "flow-versions"


def flow_path(context: ConsoleContext, name: str) -> Path:
    """``flows_dir/NAME.yaml`` for a plain name that exists; 404 otherwise (no ``..``, no subfolder)."""
    if not _NAME.match(name):
        raise HTTPException(404, f"no flow named {name[:60]!r}")
    path = context.flows_dir / f"{name}.yaml"
    if not path.is_file():
        raise HTTPException(404, f"no flow named {name!r} in {context.flows_dir}")
    return path


def versions_of(context: ConsoleContext, name: str) -> FlowVersions:
    return FlowVersions(flow_path(context, name), context.settings.data_path / HISTORY_FOLDER / name)


def flow_names(context: ConsoleContext) -> list[str]:
    return sorted(p.stem for p in context.flows_dir.glob("*.yaml") if _NAME.match(p.stem) and p.is_file())


@dataclass
class FlowState:
    """What the served file holds now: its metadata version and graph, or why it cannot load."""

    name: str
    version: str = ""
    description: str = ""
    mermaid: str = ""
    problems: list[Problem] = field(default_factory=list)


def flow_state(path: Path) -> FlowState:
    state = FlowState(path.stem)
    try:
        flow = load_flow(path)
    except FlowValidationError as exc:
        state.problems = exc.problems
        return state
    state.version = flow.metadata.version
    state.description = flow.metadata.description
    state.mermaid = to_mermaid(flow)
    state.problems = list(flow.warnings)
    return state


def conversation_files(context: ConsoleContext, served: Path) -> list[Path]:
    """The conversation test files (``flows_dir/tests/*.yaml``) whose ``flow:`` is ``served``."""
    found: list[Path] = []
    folder = context.flows_dir / "tests"
    for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
        data, _ = read_marked(path, str(path), "test file", "a mapping with flow: and cases:")
        target = data.get("flow") if data is not None else None
        if isinstance(target, str) and (path.parent / target).resolve() == served.resolve():
            found.append(path)
    return found


@dataclass
class ConversationRun:
    """Every case of every test file of a flow: passed, failed, and files that would not run."""

    results: list[CaseResult] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for r in self.results if r.passed)

    @property
    def failed(self) -> int:
        return len(self.results) - self.passed + len(self.errors)


def run_tests(context: ConsoleContext, served: Path) -> ConversationRun:
    """``flows test`` over this flow's test files, against the served (published) text."""
    run = ConversationRun()
    for path in conversation_files(context, served):
        run.files.append(path.name)
        try:
            run.results.extend(run_file(path))
        except ConversationTestError as exc:
            run.errors.append(f"{path.name}: {exc}")
    return run
