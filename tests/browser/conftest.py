"""Browser fixtures shared by every console page test: Debian's Chromium driven by Playwright
(never a downloaded browser), ``run_ivr.py console`` started on a free port over a temporary
data dir, users created with the ``users add`` command, and pages already logged in.

- ``console_server``: the running console (``.base_url``, ``.data_dir``, ``.database_url``,
  ``.mqtt_prefix`` of its live page on the local Mosquitto, ``.run(*argv)`` to run any
  ``run_ivr.py`` command against the same data dir).
- ``make_user(role, grants=())``: a new user via ``run_ivr.py users add``; returns name, password.
- ``page_as(role, grants=())``: a new browser context logged in as a new user of that role.

Chromium missing: skip, but fail under CI=true.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from ivr.cli import main as cli_main
from ivr.sipp_peer import free_port

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("IVR_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "browser test password"
MQTT_BROKER = ("127.0.0.1", 1883)
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS_DIR", "")
"""A folder: pages call :func:`screenshot` to save themselves there (scripts/console_screenshots.py)."""


def screenshot(page: Page, name: str) -> None:
    """Save a full-page PNG of ``page`` as NAME.png when ``CONSOLE_SCREENSHOTS_DIR`` is set."""
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required under CI=true")
    pytest.skip(f"{what} is not installed")


@dataclass
class ConsoleServer:
    base_url: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path
    mqtt_prefix: str = "ivr"
    """``mqtt.topic_prefix`` of this console (the broker is :data:`MQTT_BROKER`)."""

    @property
    def database_url(self) -> str:
        return f"sqlite:///{self.data_dir / 'ivr.sqlite3'}"

    def run(self, *argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        """``run_ivr.py ARGV --data-dir DATA_DIR``, as an operator would type it."""
        return subprocess.run(
            [sys.executable, str(ROOT / "run_ivr.py"), *argv, "--data-dir", str(self.data_dir)],
            input=stdin,
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=False,
        )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Chromium for one test module. Not for the session: Playwright's sync API keeps an asyncio
    loop running in the main thread while it is open, so every later test in the same process
    that calls ``asyncio.run`` would fail ("cannot be called from a running event loop")."""
    if not CHROMIUM.exists():
        _missing(f"Chromium ({CHROMIUM})")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield chromium
        finally:
            chromium.close()


def _ivr_environment() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key.startswith("IVR_")}


_SESSION_IVR_ENV = _ivr_environment()
"""The ``IVR_*`` settings when the tests started: a module that changes them (e.g. to point the
console at a copy of the flows) gets a console of its own; the others share one."""


@pytest.fixture(scope="session")
def shared_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleServer]:
    """One console for every module that leaves the settings alone (each start costs seconds)."""
    base = {key: value for key, value in os.environ.items() if not key.startswith("IVR_")}
    with _running_console(tmp_path_factory, {**base, **_SESSION_IVR_ENV}) as server:
        yield server


@pytest.fixture(scope="module")
def console_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ConsoleServer]:
    """The shared console, or a console of the module's own when it changed ``IVR_*`` settings
    before asking (its data dir, users and log are then its own too). Tests on the shared one
    make names of their own (users, campaigns, call ids) rather than expect an empty database."""
    if _ivr_environment() == _SESSION_IVR_ENV:
        yield request.getfixturevalue("shared_console")
        return
    with _running_console(tmp_path_factory, dict(os.environ)) as server:
        yield server


@contextlib.contextmanager
def _running_console(
    tmp_path_factory: pytest.TempPathFactory, environment: dict[str, str]
) -> Iterator[ConsoleServer]:
    """``run_ivr.py console`` on a free loopback port over a new data dir, until the block ends."""
    data_dir = tmp_path_factory.mktemp("console-data")
    port = free_port()
    log_path = data_dir.parent / f"console-{port}.log"
    mqtt_prefix = f"test-{uuid.uuid4().hex[:12]}"  # its live page hears only this test's call events
    env = {
        **environment,
        "IVR_CONSOLE__SECRET_KEY": uuid.uuid4().hex * 2,
        "IVR_MQTT__HOST": MQTT_BROKER[0],
        "IVR_MQTT__PORT": str(MQTT_BROKER[1]),
        "IVR_MQTT__TOPIC_PREFIX": mqtt_prefix,
    }
    env.pop("IVR_CONFIG", None)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "run_ivr.py"),
                "console",
                "--port",
                str(port),
                "--data-dir",
                str(data_dir),
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = ConsoleServer(f"http://127.0.0.1:{port}", data_dir, proc, log_path, mqtt_prefix)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(server.base_url + "/login", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"console did not start; its log:\n{server.log()[-3000:]}")
            time.sleep(0.2)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def make_user(console_server: ConsoleServer) -> Callable[..., tuple[str, str]]:
    """Users are added by the ``users add`` command itself, run in this process (a new
    interpreter per user would cost seconds each on a loaded machine)."""

    def make(role: str, grants: tuple[str, ...] = (), name: str | None = None) -> tuple[str, str]:
        name = name or f"{role}-{uuid.uuid4().hex[:6]}"
        argv = [
            "users",
            "add",
            name,
            "--role",
            role,
            "--password-stdin",
            "--data-dir",
            str(console_server.data_dir),
        ]
        for grant in grants:
            argv += ["--grant", grant]
        saved = sys.stdin
        sys.stdin = io.StringIO(PASSWORD + "\n")
        try:
            assert cli_main(argv) == 0
        finally:
            sys.stdin = saved
        return name, PASSWORD

    return make


def log_in(page: Page, base_url: str, name: str, password: str) -> None:
    page.goto(base_url + "/login")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_load_state()
    assert "/login" not in page.url, f"login as {name} failed: {page.content()[:500]}"


@pytest.fixture(scope="module")
def _logins(
    console_server: ConsoleServer, make_user: Callable[..., tuple[str, str]]
) -> dict[tuple[str, ...], Any]:
    """Logged-in browser storage (the session cookie) per role and grants, made once per module."""
    return {}


@pytest.fixture
def page_as(
    browser: Browser,
    console_server: ConsoleServer,
    make_user: Callable[..., tuple[str, str]],
    _logins: dict[tuple[str, ...], Any],
) -> Iterator[Callable[..., Page]]:
    """A new page logged in as a user of ``role`` (one user per role and grants per module:
    each login costs an argon2 check, seconds on a loaded machine)."""
    contexts: list[BrowserContext] = []

    def make(role: str, grants: tuple[str, ...] = ()) -> Page:
        key = (role, *sorted(grants))
        stored = _logins.get(key)
        context = browser.new_context(viewport={"width": 1280, "height": 900}, storage_state=stored)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        if stored is None:
            name, password = make_user(role, grants)
            log_in(page, console_server.base_url, name, password)
            _logins[key] = context.storage_state()
        return page

    yield make
    for context in contexts:
        context.close()
