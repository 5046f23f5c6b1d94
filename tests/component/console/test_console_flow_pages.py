"""The flow admin's pages over a copy of the shipped library: the graph, a refused save with its
problem at its line, publish (CSRF-protected, atomic, seen by the hot reload), diff, rollback,
and the conversation tests run from the page; only ``flows.publish`` may change anything."""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from starlette.testclient import TestClient

from config.settings import load_settings
from console.app import create_app, open_context
from console.web import ConsoleContext
from flows import FlowRepository
from recordings.database import forget_engines

LIBRARY = Path(__file__).resolve().parents[3] / "flows" / "library"
PASSWORD = "correct horse battery staple"


@dataclass
class Site:
    context: ConsoleContext
    demo: Path

    def client(self, name: str) -> tuple[TestClient, str]:
        """A logged-in client and its CSRF token."""
        client = TestClient(create_app(self.context), follow_redirects=False)
        token = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/login").text)
        assert token is not None
        answer = client.post("/login", data={"name": name, "password": PASSWORD, "csrf": token.group(1)})
        assert answer.status_code == 303, answer.text
        fresh = re.search(r'name="csrf-token" content="([^"]+)"', client.get("/flows/demo").text)
        return client, fresh.group(1) if fresh else ""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    flows = tmp_path / "flows"
    shutil.copytree(LIBRARY, flows)
    settings = load_settings(
        env={}, overrides={"data_dir": str(tmp_path / "data"), "flow.path": str(flows / "hotline.yaml")}
    )
    context = open_context(settings)
    # argon2 at its real cost takes ~1 s a hash on a loaded CI machine; these tests are not about
    # password hashing (a hash carries its own parameters, so logins still verify).
    context.users.hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    now = datetime.now(UTC)
    context.users.add("ada", "admin", PASSWORD, now)
    context.users.add("vic", "manager", PASSWORD, now, grants=frozenset({"flows.view"}))
    context.users.add("alice", "auditor", PASSWORD, now)
    yield Site(context, flows / "demo.yaml")
    forget_engines()


def test_flows_are_listed_and_a_graph_page_carries_quoted_mermaid(site: Site) -> None:
    ada, _ = site.client("ada")
    listing = ada.get("/flows")
    for name in ("hotline", "demo", "retention", "compliance_callback"):
        assert f'href="/flows/{name}"' in listing.text
    page = ada.get("/flows/hotline")
    assert page.status_code == 200 and '<pre class="mermaid"' in page.text
    assert "--&gt;|&#34;is_open(&#39;contact_center&#39;)&#34;| s_welcome" in page.text
    assert 'data-mermaid="/static/vendor/mermaid.min.js"' in page.text
    assert ada.get("/flows/..%2Fsecrets").status_code == 404
    assert ada.get("/flows/shared").status_code == 404


def test_a_broken_save_shows_the_problem_at_its_line_and_serves_nothing_new(site: Site) -> None:
    ada, token = site.client("ada")
    original = site.demo.read_text()
    broken = original.replace("    next: ask\n", "    next: askk\n", 1)
    line = broken.splitlines().index("    next: askk") + 1
    answer = ada.post("/flows/demo/publish", data={"text": broken, "csrf": token})
    assert answer.status_code == 400
    assert f'data-line="{line}"' in answer.text and "askk" in answer.text
    assert f"line {line}, column" in answer.text and "Not published" in answer.text
    assert "next: askk" in answer.text, "the admin's text comes back in the editor"
    assert site.demo.read_text() == original
    assert "Not published from the console yet" in ada.get("/flows/demo").text


def test_publish_needs_csrf_then_serves_the_new_version_and_rollback_restores_it(
    site: Site, caplog: pytest.LogCaptureFixture
) -> None:
    ada, token = site.client("ada")
    repository = FlowRepository(site.demo)
    original = site.demo.read_text()
    edited = original.replace("thank you for calling the demo line", "welcome to the new demo line")
    assert ada.post("/flows/demo/publish", data={"text": edited}).status_code == 403
    assert site.demo.read_text() == original
    with caplog.at_level(logging.INFO, logger="ivr.flows"):
        answer = ada.post("/flows/demo/publish", data={"text": edited, "csrf": token})
    assert answer.status_code == 303 and answer.headers["location"] == "/flows/demo?done=published&version=2"
    assert site.demo.read_text() == edited
    assert "welcome to the new demo line" in repository.current().steps["greet"].say[0]
    published = [getattr(r, "fields", {}) for r in caplog.records if r.getMessage() == "flow_published"]
    assert published == [
        {"flow": str(site.demo), "version": 2, "action": "publish", "source": None, "user": "ada"}
    ]
    page = ada.get("/flows/demo?done=published&version=2")
    assert "Version 2 published" in page.text and "(file on disk)" in page.text
    diff = ada.get("/flows/demo/diff", params={"from": 1, "to": 2})
    assert "+  greet:" not in diff.text and "welcome to the new demo line" in diff.text
    back = ada.post("/flows/demo/rollback", data={"version": "1", "csrf": token})
    assert back.status_code == 303 and back.headers["location"].endswith("version=3")
    assert site.demo.read_text() == original
    assert "thank you for calling the demo line" in repository.current().steps["greet"].say[0]
    assert "rollback of v1" in ada.get("/flows/demo").text


def test_viewers_read_but_only_flows_publish_changes_and_others_see_nothing(site: Site) -> None:
    viewer, token = site.client("vic")
    page = viewer.get("/flows/demo")
    assert page.status_code == 200 and 'id="publish"' not in page.text and "readonly" in page.text
    text = site.demo.read_text()
    assert viewer.post("/flows/demo/publish", data={"text": text + "\n", "csrf": token}).status_code == 403
    assert viewer.post("/flows/demo/rollback", data={"version": "1", "csrf": token}).status_code == 403
    assert viewer.post("/flows/demo/check", data={"text": text, "csrf": token}).status_code == 403
    assert site.demo.read_text() == text
    auditor, _ = site.client("alice")
    refused = auditor.get("/flows/demo")
    assert refused.status_code == 403 and "thank you for calling" not in refused.text


def test_conversation_tests_run_from_the_page(site: Site) -> None:
    ada, token = site.client("ada")
    checked = ada.post("/flows/demo/check", data={"text": site.demo.read_text(), "csrf": token})
    assert checked.status_code == 200 and "No problems: this text can be published." in checked.text
    answer = ada.post("/flows/demo/tests", data={"csrf": token})
    assert answer.status_code == 200
    section = answer.text[answer.text.find("test-results") :][:600]
    assert re.search(r"\b4 passed, 0 failed", answer.text) and "demo.yaml" in answer.text, section
    assert "PASS asking for a person on a line without agents" in answer.text
