"""Logging in and being refused, in Chromium against ``run_ivr.py console``."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import Browser, Page

from tests.browser.conftest import ConsoleServer, screenshot

pytestmark = pytest.mark.e2e


def test_login_page_refuses_a_wrong_password_then_lets_the_user_in(
    browser: Browser, console_server: ConsoleServer, make_user: Callable[..., tuple[str, str]]
) -> None:
    name, password = make_user("manager")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.goto(console_server.base_url + "/campaigns")
        assert "/login?next=/campaigns" in page.url
        screenshot(page, "login")
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", "not the password")
        page.click("button[type=submit]")
        assert page.locator("p.error").inner_text() == "Wrong name or password."
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url("**/campaigns")
        assert page.locator("h1").inner_text() == "Campaigns"
        assert context.cookies()[0]["httpOnly"] is True
        page.click("text=Log out")
        page.wait_for_url("**/login")
    finally:
        context.close()
    assert "not the password" not in console_server.log()
    assert "event=console.login_failed" in console_server.log()


def test_each_role_is_refused_where_it_must_be(
    page_as: Callable[..., Page], console_server: ConsoleServer
) -> None:
    auditor = page_as("auditor")
    answer = auditor.goto(console_server.base_url + "/campaigns")
    assert answer is not None and answer.status == 403
    assert "403 Forbidden" in auditor.locator("h1").inner_text()
    assert auditor.locator("table").count() == 0  # no data at all
    assert auditor.locator("nav >> text=Campaigns").count() == 0
    screenshot(auditor, "forbidden")
    supervisor = page_as("supervisor")
    answer = supervisor.goto(console_server.base_url + "/campaigns")
    assert answer is not None and answer.status == 200
    assert supervisor.locator("form.import").count() == 0  # may watch, may not load lists
    token = supervisor.locator("meta[name=csrf-token]").get_attribute("content") or ""
    refused = supervisor.request.post(
        console_server.base_url + "/campaigns/any/start", headers={"X-CSRF-Token": token}
    )
    assert refused.status == 403
