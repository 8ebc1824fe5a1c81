"""CSRF protection for the UI's forms: a per-session token in every form, checked on POST.

A browser gets a random session id in a cookie (``lakehouse_ui_session``: ``HttpOnly``,
``SameSite=Strict``) with the first page it loads. Every page's forms carry the hidden field
``csrf_token``: the HMAC-SHA256 of that session id under a key drawn when the UI starts (a
restarted UI asks for a reload). A ``POST``, ``PUT``, ``PATCH`` or ``DELETE`` without the
cookie, or whose token (the form field, or an ``X-CSRF-Token`` header) is missing or does not
match, answers 403 before the route runs.

Why it holds: another site can make a browser post to the UI, with its cookies, but it
cannot read the UI's pages (same-origin policy), so it never learns the token, and it cannot
compute one without the key. ``SameSite=Strict`` keeps the cookie off cross-site requests
as a second line. No JavaScript is needed: the token is an ordinary hidden input.

The session id holds nothing else, so several UIs on one host (cookies ignore the port)
share it, each with its own key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import urllib.parse

from fastapi import HTTPException, Request, Response

COOKIE = "lakehouse_ui_session"
FIELD = "csrf_token"
HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
_SESSION_ID = re.compile(r"[A-Za-z0-9_-]{32,128}")


class CsrfTokens:
    """Issues session ids and the form tokens bound to them; checks submitted tokens."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or secrets.token_bytes(32)

    @staticmethod
    def session_of(request: Request) -> str | None:
        """The request's session id when its cookie holds a well-formed one."""
        value = request.cookies.get(COOKIE)
        return value if value is not None and _SESSION_ID.fullmatch(value) else None

    def token(self, session_id: str) -> str:
        """The form token of ``session_id``."""
        return hmac.new(self._key, session_id.encode("ascii"), hashlib.sha256).hexdigest()

    def for_page(self, request: Request) -> tuple[str, str | None]:
        """The token for a page's forms, and a new session id to set when there is none."""
        session = self.session_of(request)
        if session is not None:
            return self.token(session), None
        fresh = secrets.token_urlsafe(32)
        return self.token(fresh), fresh

    @staticmethod
    def set_cookie(response: Response, session_id: str) -> None:
        """Give the browser its session id (not readable by scripts, never sent cross-site)."""
        response.set_cookie(COOKIE, session_id, path="/", httponly=True, samesite="strict")

    def valid(self, request: Request, sent: str | None) -> bool:
        """True when ``sent`` is the token of the request's session."""
        session = self.session_of(request)
        if session is None or not sent:
            return False
        return hmac.compare_digest(self.token(session), sent)


async def require_csrf_token(request: Request) -> None:
    """An app-wide dependency: 403 for an unsafe method without a valid token.

    The token comes from the ``X-CSRF-Token`` header or the ``csrf_token`` field of a URL-encoded
    form body (the body is read once here; the route reads the same cached bytes).
    """
    if request.method in SAFE_METHODS:
        return
    tokens: CsrfTokens = request.app.state.csrf
    sent = request.headers.get(HEADER)
    if sent is None:
        body = (await request.body()).decode("utf-8", errors="replace")
        values = urllib.parse.parse_qs(body, keep_blank_values=True).get(FIELD)
        sent = values[-1] if values else None
    if not tokens.valid(request, sent):
        raise HTTPException(
            status_code=403,
            detail="the form has no valid CSRF token (expired or not from this UI): "
            "reload the page and submit it again",
        )
