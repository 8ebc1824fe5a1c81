"""The UI refuses forged form posts (CSRF), foreign Host headers and oversized bodies."""

from __future__ import annotations

import re

import httpx

from lakehouse.apps.ui.app import MAX_BODY_BYTES
from lakehouse.apps.ui.csrf import COOKIE
from tests.apps.ui.conftest import UiStack
from tests.apps.ui.test_pages import form_data


def token_of(page: str) -> str:
    found = re.search(r'<input type="hidden" name="csrf_token" value="([0-9a-f]{64})">', page)
    assert found, page[:2000]
    return found.group(1)


def test_the_form_carries_a_per_session_token_in_an_http_only_strict_cookie(
    ui_stack: UiStack,
) -> None:
    with httpx.Client(base_url=ui_stack.ui_url, timeout=30) as first:
        page = first.get("/predict")
        cookie = page.headers["set-cookie"]
        assert cookie.startswith(f"{COOKIE}=")
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/" in cookie
        token = token_of(page.text)
        again = first.get("/predict")
        assert "set-cookie" not in again.headers  # the session keeps its id
        assert token_of(again.text) == token
        assert "<script" not in page.text  # a plain hidden field: no JavaScript
    with httpx.Client(base_url=ui_stack.ui_url, timeout=30) as second:
        assert token_of(second.get("/predict").text) != token  # per session


def test_a_post_without_a_valid_token_is_refused_with_403(ui_stack: UiStack) -> None:
    data = form_data(ui_stack.registry.records()[0])
    url = ui_stack.ui_url
    with httpx.Client(base_url=url, timeout=30) as browser, httpx.Client(timeout=30) as other:
        token = token_of(browser.get("/predict").text)
        other_token = token_of(other.get(f"{url}/predict").text)
        bare_token = token_of(browser.get(f"{ui_stack.bare_ui_url}/predict").text)
        refused = {
            # what a page on another site can send: the browser adds the cookie, not the token
            "no token": browser.post("/predict", data=data),
            "empty token": browser.post("/predict", data={**data, "csrf_token": ""}),
            "wrong token": browser.post("/predict", data={**data, "csrf_token": "0" * 64}),
            "another session's token": browser.post(
                "/predict", data={**data, "csrf_token": other_token}
            ),
            # the same session id, the token of another UI (another key)
            "another UI's token": browser.post("/predict", data={**data, "csrf_token": bare_token}),
            "token without the cookie": httpx.post(
                f"{url}/predict", data={**data, "csrf_token": token}, timeout=30
            ),
        }
        for case, response in refused.items():
            assert response.status_code == 403, (case, response.text[:500])
            assert "CSRF token" in response.json()["detail"], case
            assert 'id="result"' not in response.text
        accepted = browser.post("/predict", data={**data, "csrf_token": token})
        assert accepted.status_code == 200, accepted.text[:2000]
        assert 'id="result"' in accepted.text
        assert token_of(accepted.text) == token  # the answered form can be submitted again
        by_header = browser.post("/predict", data=data, headers={"X-CSRF-Token": token})
        assert by_header.status_code == 200


def test_only_loopback_hosts_are_answered(ui_stack: UiStack) -> None:
    port = ui_stack.ui_url.rsplit(":", 1)[1]
    for host in (f"localhost:{port}", f"[::1]:{port}", "127.0.0.1"):
        assert httpx.get(f"{ui_stack.ui_url}/health", headers={"Host": host}).status_code == 200
    for host in ("attacker.example", f"attacker.example:{port}", "localhost.attacker.example"):
        for path in ("/models", "/predict", "/health"):
            response = httpx.get(f"{ui_stack.ui_url}{path}", headers={"Host": host}, timeout=30)
            assert response.status_code == 400, (host, path)
            assert response.text == "Invalid host header"
        posted = httpx.post(f"{ui_stack.ui_url}/predict", data={"a": "1"}, headers={"Host": host})
        assert posted.status_code == 400


def test_a_form_body_over_the_limit_gets_413(ui_stack: UiStack) -> None:
    data = form_data(ui_stack.registry.records()[0])
    with httpx.Client(base_url=ui_stack.ui_url, timeout=30) as browser:
        token = token_of(browser.get("/predict").text)
        padded = {**data, "csrf_token": token, "padding": "x" * MAX_BODY_BYTES}
        assert browser.post("/predict", data=padded).status_code == 413
        ok = browser.post("/predict", data={**data, "csrf_token": token})
        assert ok.status_code == 200
