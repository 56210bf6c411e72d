"""What wraps every response of the web app, outside FastAPI's own error handling.

Two plain ASGI layers, put around the whole middleware stack (see
``digest.web.public.PublicApp``) so they see every request before anything
reads it, and every response including the 500 pages Starlette writes itself:

- :class:`BodyLimit` refuses a request body over ``max_bytes`` with 413 before it
  is read: a ``Content-Length`` over the cap is refused at once, and a streamed
  (chunked) body is counted as it arrives and cut off when it passes the cap. Our
  forms are a few hundred bytes; nobody needs to send us a megabyte.
- :class:`SecurityHeaders` adds the headers that keep tokens out of Referer
  headers, forbid framing and caching, to every response, errors too.
"""

from __future__ import annotations

from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: The largest request body any endpoint takes (the sign-up form is well under 2 KB).
MAX_BODY_BYTES = 16 * 1024

SECURITY_HEADERS: Mapping[str, str] = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}


class _BodyTooLarge(Exception):
    """Raised into the app when a streamed body passes the cap (after the 413 went out)."""


class BodyLimit:
    """Answer 413 to a request whose body is, or turns out to be, over ``max_bytes``."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False  # the app began its response
        answered = False  # we sent the 413: drop whatever the app still sends

        async def counted_receive() -> Message:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    if not started:
                        answered = True
                        await self._refuse(send)
                    raise _BodyTooLarge(f"request body over {self.max_bytes} bytes")
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            return  # ours: answered with 413, or the response had begun and is cut short
        except Exception:
            if not answered:
                raise  # a real error, not the one we caused

    async def _refuse(self, send: Send) -> None:
        body = (
            f"Request body too large: this site takes at most {self.max_bytes:,} bytes.\n"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),  # the rest of the body is not read
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we see it
    return None


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP response the app below sends."""

    def __init__(self, app: ASGIApp, headers: Mapping[str, str] = SECURITY_HEADERS) -> None:
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self.headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
