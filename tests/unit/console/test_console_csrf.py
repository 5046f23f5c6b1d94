"""The CSRF middleware on a two-route app: unsafe methods need the session's token."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from console.csrf import CsrfMiddleware, session_token, token_ok


async def token(request: Request) -> Response:
    return PlainTextResponse(session_token(request.session))


async def echo(request: Request) -> Response:
    form = await request.form()
    upload = form.get("file")
    size = len(await upload.read()) if upload is not None and not isinstance(upload, str) else 0
    return PlainTextResponse(f"{form.get('note')}|{size}")


def client(max_body: int = 1 << 20) -> TestClient:
    app = Starlette(
        routes=[Route("/token", token), Route("/echo", echo, methods=["POST", "DELETE"])],
        middleware=[
            Middleware(SessionMiddleware, secret_key="x" * 32),
            Middleware(CsrfMiddleware, max_body=max_body),
        ],
    )
    return TestClient(app)


def test_token_compare() -> None:
    assert token_ok("abc", "abc")
    assert not token_ok("abc", "abd")
    assert not token_ok(None, None)
    assert not token_ok("", "")


def test_form_without_or_with_a_wrong_token_is_refused() -> None:
    c = client()
    c.get("/token")
    refused = c.post("/echo", data={"note": "hi"})
    assert refused.status_code == 403
    assert "CSRF" in refused.text
    assert c.post("/echo", data={"note": "hi", "csrf": "guess"}).status_code == 403


def test_form_field_or_header_passes_and_the_body_reaches_the_page_intact() -> None:
    c = client()
    tok = c.get("/token").text
    ok = c.post("/echo", data={"note": "hi", "csrf": tok}, files={"file": ("a.csv", b"x" * 5000, "text/csv")})
    assert ok.status_code == 200
    assert ok.text == "hi|5000"
    assert c.delete("/echo", headers={"X-CSRF-Token": tok}).status_code != 403
    assert c.delete("/echo", headers={"X-CSRF-Token": tok + "x"}).status_code == 403


def test_no_session_means_no_token_can_match() -> None:
    c = client()
    assert c.post("/echo", data={"note": "hi", "csrf": ""}).status_code == 403


def test_json_body_needs_the_header() -> None:
    c = client()
    tok = c.get("/token").text
    assert c.post("/echo", json={"csrf": tok}).status_code == 403


def test_oversized_body_is_refused_before_the_page() -> None:
    c = client(max_body=1000)
    tok = c.get("/token").text
    assert c.post("/echo", data={"csrf": tok, "note": "y" * 5000}).status_code == 413
