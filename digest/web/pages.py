"""The front page and the error pages.

- ``GET /`` is a small page: what the publication is, when it goes out, and a
  link to each part of the site (:data:`SECTIONS`: the sign-up form now; an
  archive later adds its route and one entry there).
- Errors (404, 405, 422, 500 …) answer a browser with a page and any other client
  with FastAPI's JSON (``{"detail": …}``). A client gets the page when its
  ``Accept`` header prefers ``text/html`` to ``application/json``, as browsers'
  do; ``*/*``, no header, or one that can't be parsed keeps the JSON. Headers an
  error carries (``Allow`` on a 405) are kept; the security headers are added
  outside, as to every response (``digest.web.asgi``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from http import HTTPStatus

import mimeparse
from fastapi import FastAPI, Request
from fastapi.exception_handlers import (
    http_exception_handler,
    request_validation_exception_handler,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from starlette.exceptions import HTTPException

from digest.errors import TemplateError
from digest.web.site import PublicSite

log = logging.getLogger("digest.web")

#: The front page's links: (path, label, what is there).
SECTIONS: list[tuple[str, str, str]] = [
    ("/subscribe", "Sign up", "get it in your inbox; free, and you can leave with one click"),
]

#: What an error page says: its heading and its lines. Other statuses: the status's name.
ERROR_PAGES: dict[int, tuple[str, list[str]]] = {
    400: ("The request could not be read", ["Please go back and try again."]),
    404: (
        "Page not found",
        ["There is no page at this address. It may have been mistyped or cut short."],
    ),
    405: (
        "This page can't do that",
        ["The address is right, but it does not take this kind of request."],
    ),
    422: ("The request could not be read", ["Please go back and try again."]),
    500: (
        "Something went wrong on our side",
        ["We could not answer this time. Please try again in a few minutes."],
    ),
}


def wants_html(request: Request) -> bool:
    """Whether the client prefers a page to JSON (browsers say so in ``Accept``)."""
    accept = request.headers.get("accept", "")
    try:
        best: str = mimeparse.best_match(["text/html", "application/json"], accept)
    except mimeparse.MimeTypeParseException:
        return False
    return best == "text/html"  # on a tie (``*/*``) the later, JSON, wins


def error_page(
    site: PublicSite, status: int, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    try:
        title, lines = ERROR_PAGES.get(status, (HTTPStatus(status).phrase, []))
    except ValueError:  # a status with no name
        title, lines = "Error", []
    response = site.page("message", status, title=title, lines=lines, subscribe_link=True)
    response.headers.update(headers or {})
    return response


def add_pages(app: FastAPI, site: PublicSite) -> None:
    """Add the front page, and the error handlers that give browsers pages."""

    @app.api_route("/", methods=["GET", "HEAD"], response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return site.page("index", sections=SECTIONS)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if wants_html(request):
            return error_page(site, exc.status_code, exc.headers)
        return await http_exception_handler(request, exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        if wants_html(request):
            return error_page(site, 422)
        return await request_validation_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> Response:
        """The 500 answer (Starlette logs the exception and re-raises it to the server)."""
        if wants_html(request):
            try:
                return error_page(site, 500)
            except TemplateError as problem:  # the page itself can't be made
                log.error("the error page could not be rendered: %s", problem)
                return PlainTextResponse("Internal Server Error", status_code=500)
        return JSONResponse({"detail": "Internal Server Error"}, status_code=500)
