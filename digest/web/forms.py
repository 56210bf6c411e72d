"""The sign-up form's guard against cross-site posts.

Another site must not be able to make a visitor's browser sign an address up: the
consent record would carry the visitor's IP address and browser as evidence. Two
layers, neither needing JavaScript:

1. What the browser says about where the post came from. A foreign ``Origin`` is
   refused. Our pages send ``Referrer-Policy: no-referrer``, under which browsers
   send ``Origin: null`` even for a same-site post, so ``null`` (or no Origin)
   defers to ``Sec-Fetch-Site``: ``same-origin`` and ``none`` (typed, bookmarked)
   pass, anything else is refused.
2. When the browser says neither (older browsers, scripts), the post must carry
   the form's token: a signed random value that must match the ``SameSite=Strict``
   cookie set with the form (double submit). Another site can read neither.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import Request
from fastapi.responses import HTMLResponse
from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "digest_form"
FIELD = "form_token"
_SALT = "digest.web.subscribe-form"
MAX_AGE_SECONDS = 2 * 86_400  # a form left open over a weekend still works


@dataclass(frozen=True)
class Verdict:
    """Whether a post may be taken; ``foreign`` when another site sent it."""

    ok: bool
    foreign: bool = False


class FormGuard:
    """Issues the form's token and judges posts of the form."""

    def __init__(self, secret: str, public_url: str) -> None:
        self._serializer = URLSafeTimedSerializer(secret, salt=_SALT)
        self.public_origin = _origin(public_url)

    def token(self, request: Request) -> tuple[str, str]:
        """(cookie value, form token): the visitor's cookie kept if it has one."""
        nonce = request.cookies.get(COOKIE, "")
        if not (16 <= len(nonce) <= 64 and nonce.replace("-", "").replace("_", "").isalnum()):
            nonce = secrets.token_urlsafe(18)
        return nonce, str(self._serializer.dumps(nonce))

    def judge(self, request: Request, form_token: str) -> Verdict:
        origin = request.headers.get("origin")
        if origin is not None and origin != "null":
            if self._same_origin(origin, request.headers.get("host", "")):
                return Verdict(True)
            return Verdict(False, foreign=True)
        fetch_site = request.headers.get("sec-fetch-site")
        if fetch_site is not None:
            if fetch_site in ("same-origin", "none"):
                return Verdict(True)
            return Verdict(False, foreign=True)
        return Verdict(self._token_matches(form_token, request.cookies.get(COOKIE, "")))

    def attach(self, response: HTMLResponse, request: Request, nonce: str) -> HTMLResponse:
        """Set the cookie that goes with a form on the page."""
        response.set_cookie(
            COOKIE,
            nonce,
            max_age=MAX_AGE_SECONDS,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _same_origin(self, origin: str, host: str) -> bool:
        if origin.lower() == self.public_origin:
            return True
        netloc = urlsplit(origin).netloc.lower()
        return bool(netloc) and netloc == host.lower()

    def _token_matches(self, form_token: str, cookie: str) -> bool:
        if not form_token or not cookie:
            return False
        try:
            nonce = self._serializer.loads(form_token, max_age=MAX_AGE_SECONDS)
        except BadSignature:  # includes SignatureExpired
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, cookie)


def _origin(url: str) -> str:
    """scheme://host[:port] of a URL, as browsers write it in ``Origin``."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}.get(scheme)
    port = "" if parts.port in (None, default) else f":{parts.port}"
    return f"{scheme}://{host}{port}"
