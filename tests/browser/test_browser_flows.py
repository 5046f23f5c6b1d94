"""A flow admin in Chromium: the hotline's graph (the one an unquoted ``is_open('...')`` label
once broke) is drawn by the vendored Mermaid without an error; a save with a mistake shows the
problem at its line; a valid edit is published (and is what ``serve`` would load), then rolled
back with one click.

Mermaid is 5.5 MB of JavaScript, parsed on every flow page: it is drawn here once, for the
hotline, and blocked for the editing test, which never looks at the graph. That the graph text
of every shipped flow quotes its labels is tests/unit/console/test_console_flow_graph.py.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import ConsoleServer, screenshot

pytestmark = pytest.mark.e2e
LIBRARY = Path(__file__).resolve().parents[2] / "flows" / "library"
SHIPPED = sorted(p.stem for p in LIBRARY.glob("*.yaml"))


@pytest.fixture(scope="module")
def flows_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A copy of the shipped library for the console to serve and edit (never the repository's)."""
    folder = tmp_path_factory.mktemp("flows") / "library"
    shutil.copytree(LIBRARY, folder)
    before = os.environ.get("IVR_FLOW__PATH")
    os.environ["IVR_FLOW__PATH"] = str(folder / "hotline.yaml")
    try:
        yield folder
    finally:
        if before is None:
            os.environ.pop("IVR_FLOW__PATH", None)
        else:
            os.environ["IVR_FLOW__PATH"] = before


@pytest.fixture(scope="module")
def console_server(flows_dir: Path, console_server: ConsoleServer) -> ConsoleServer:
    """The shared console fixture, started after ``flows_dir`` points it at the copy."""
    return console_server


def test_the_hotline_graph_renders_as_svg(
    console_server: ConsoleServer, page_as: Callable[..., Page]
) -> None:
    page = page_as("admin")
    page.goto(console_server.base_url + "/flows")
    assert page.locator("table.flows tbody tr").count() == len(SHIPPED)
    screenshot(page, "flows-list")
    page.goto(f"{console_server.base_url}/flows/hotline")
    page.wait_for_selector("#graph[data-rendered]", timeout=30_000)
    error = page.locator("#graph-error").inner_text()
    assert page.get_attribute("#graph", "data-rendered") == "ok", error
    assert page.locator("#graph svg g.node").count() >= 10
    assert page.locator("#graph svg").get_by_text("is_open('contact_center')").count() == 1
    screenshot(page, "flows-graph")


def test_an_error_shows_at_its_line_then_publish_and_roll_back(
    console_server: ConsoleServer, flows_dir: Path, page_as: Callable[..., Page]
) -> None:
    served = flows_dir / "demo.yaml"
    original = served.read_text()
    page = page_as("admin")
    page.route("**/static/vendor/mermaid.min.js", lambda route: route.abort())  # no graph needed here
    page.goto(console_server.base_url + "/flows/demo")
    assert page.input_value("#flow-text") == original
    broken = original.replace("    next: ask\n", "    next: askk\n", 1)
    line = broken.splitlines().index("    next: askk") + 1
    page.fill("#flow-text", broken)
    page.click("#publish")
    problem = page.locator(f'#problems li[data-line="{line}"]')
    assert "askk" in problem.inner_text() and f"line {line}" in problem.inner_text()
    expect(page.locator(f"#gutter #line-{line}.bad")).to_have_count(1)  # drawn by the page's script
    problem.locator("a.goto-line").click()
    cursor_line = page.evaluate(
        "(() => { const t = document.getElementById('flow-text');"
        " return t.value.slice(0, t.selectionStart).split('\\n').length; })()"
    )
    assert cursor_line == line
    screenshot(page, "flows-error")
    assert served.read_text() == original

    edited = original.replace("thank you for calling the demo line", "welcome to the console demo line")
    page.fill("#flow-text", edited)
    page.click("#publish")
    page.wait_for_url("**/flows/demo?done=published&version=2")
    assert served.read_text() == edited
    assert page.input_value("#flow-text") == edited
    page.click("text=Roll back to v1")
    page.wait_for_url("**/flows/demo?done=rolled+back&version=3")
    assert "Version 3 rolled back" in page.locator("#message").inner_text()
    assert served.read_text() == original
    screenshot(page, "flows-history")
