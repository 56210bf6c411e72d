"""Public endpoints: sign up, confirm, leave.

- ``GET /subscribe`` shows the form; ``POST /subscribe`` takes it (honeypot field
  ``website``; a per-network hourly limit; posts from other sites refused, see
  ``digest.web.forms``). Whatever the address's state, the answer is the same
  page, so the form reveals nothing about who is subscribed; the confirmation
  email goes out after the response, from a background task.
- ``GET /confirm/{token}`` shows one button; its ``POST`` makes the pending
  subscriber active. Mail scanners and link previews follow GETs, so a GET never
  confirms. A link works only for the sign-up it was sent for.
- ``GET /unsubscribe/{token}`` shows one button (a GET never unsubscribes);
  ``POST`` leaves, either from that button or as an RFC 8058 one-click request
  with the body ``List-Unsubscribe=One-Click``.

Pages come from ``templates/web/``; what the endpoints share is in
``digest.web.site``, the front page and the error pages in ``digest.web.pages``.
Request bodies are capped and every response carries the security headers
(``digest.web.asgi``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError

from digest.settings import Settings
from digest.web.pages import add_pages
from digest.web.site import PublicApp, PublicSite, invalid_link
from subscribers import audience
from subscribers.addresses import parse_address
from subscribers.audience import MAX_NAME
from subscribers.db import Database
from subscribers.errors import AddressError, TokenError
from subscribers.models import LEFT, ConsentMethod, Subscriber

log = logging.getLogger("digest.web")

ONE_CLICK = b"List-Unsubscribe=One-Click"
MAX_EMAIL = 320  # RFC 5321's longest path, and the column's width


def create_app(settings: Settings, db: Database) -> FastAPI:
    site = PublicSite(settings, db)
    app = PublicApp(
        title=settings.publication.name, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.site = site
    add_pages(app, site)

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/subscribe", response_class=HTMLResponse)
    def subscribe_form(request: Request) -> HTMLResponse:
        return site.form(request)

    @app.post("/subscribe", response_class=HTMLResponse)
    def subscribe(
        request: Request,
        tasks: BackgroundTasks,
        email: Annotated[str, Form()] = "",
        name: Annotated[str, Form()] = "",
        website: Annotated[str, Form()] = "",
        form_token: Annotated[str, Form()] = "",
    ) -> HTMLResponse:
        verdict = site.guard.judge(request, form_token)
        if verdict.foreign:
            log.info("sign-up from another site refused (Origin %r)", request.headers.get("origin"))
            return site.page(
                "message",
                403,
                title="Please sign up on our own page",
                lines=["This sign-up was sent from another website, so we did not take it."],
                subscribe_link=True,
            )
        if not verdict.ok:
            return site.form(
                request,
                400,
                email=email[:MAX_EMAIL],
                name=name[:MAX_NAME],
                error="The form had expired. Please press Subscribe again.",
            )
        ip = request.client.host if request.client else "unknown"
        if not site.limiter.allow(ip):
            return site.page(
                "message",
                429,
                title="Too many sign-ups",
                lines=[
                    "Too many sign-ups came from your network in the last hour.",
                    "Please try again later.",
                ],
            )
        if website.strip():  # only robots fill the hidden field; tell them nothing
            log.info("honeypot sign-up ignored from %s", ip)
            return site.page("check_inbox")
        problem, field = _too_long(email, name)
        try:
            if problem:
                raise AddressError(problem)
            address = parse_address(email)
        except AddressError as exc:
            return site.form(
                request,
                400,
                email=email[:MAX_EMAIL],
                name=name[:MAX_NAME],
                error=str(exc),
                error_field=field,
            )
        evidence = audience.ConsentEvidence(
            ConsentMethod.web_form,
            form_version=settings.subscribers.form_version,
            ip=ip,
            user_agent=request.headers.get("user-agent", "")[:500] or None,
        )
        for attempt in (1, 2):
            try:
                with db.transaction() as session:
                    joined = audience.join(
                        session, address, datetime.now(UTC), evidence, name=name.strip() or None
                    )
                    session.flush()
                    subscriber_id = joined.subscriber.id
                break
            except IntegrityError:  # the same new address posted twice at once: join again
                if attempt == 2:
                    raise
        if joined.needs_confirmation:
            tasks.add_task(site.send_confirmation, subscriber_id)
        return site.page("check_inbox")

    @app.get("/confirm/{token}", response_class=HTMLResponse)
    def confirm_page(token: str) -> HTMLResponse:
        with db.transaction() as session:
            found = site.pending_for_link(session, token)
            if isinstance(found, HTMLResponse):
                return found
            email = found.email
        return site.page("confirm", email=email, token=token)

    @app.post("/confirm/{token}", response_class=HTMLResponse)
    def confirm(token: str) -> HTMLResponse:
        with db.transaction() as session:
            found = site.pending_for_link(session, token)
            if isinstance(found, HTMLResponse):
                return found
            audience.confirm(session, found, datetime.now(UTC))
        return site.subscribed_page()

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        try:
            subscriber = site.claimed(site.links.signer.read_unsubscribe(token))
        except TokenError:
            return invalid_link(site)
        if subscriber is None or subscriber.status in LEFT:
            return _left_page(site)
        return site.page("unsubscribe", email=subscriber.email, token=token)

    @app.post("/unsubscribe/{token}", response_model=None)
    async def unsubscribe(token: str, request: Request) -> Response:
        body = await request.body()  # a few bytes at most: BodyLimit caps it
        one_click = ONE_CLICK in body
        try:
            claim = site.links.signer.read_unsubscribe(token)
        except TokenError:
            if one_click:
                return PlainTextResponse("invalid unsubscribe link", status_code=400)
            return invalid_link(site)
        reason = "one-click unsubscribe (RFC 8058)" if one_click else "unsubscribe page"
        with db.transaction() as session:
            subscriber = session.get(Subscriber, claim.subscriber_id)
            if subscriber is not None and claim.names(subscriber):
                audience.unsubscribe(session, subscriber, datetime.now(UTC), reason)
        if one_click:
            return PlainTextResponse("unsubscribed")
        return _left_page(site)

    return app


def _too_long(email: str, name: str) -> tuple[str | None, str]:
    """(what is wrong, which field) when a field is longer than we store."""
    if len(email) > MAX_EMAIL:
        return f"The email address is longer than {MAX_EMAIL} characters.", "email"
    if len(name) > MAX_NAME:
        return f"The name is longer than {MAX_NAME} characters.", "name"
    return None, "email"


def _left_page(site: PublicSite) -> HTMLResponse:
    return site.page(
        "message",
        title="You are unsubscribed",
        lines=[
            f"You will receive no more of {site.settings.publication.name}.",
            "Changed your mind? You can sign up again at any time.",
        ],
        subscribe_link=True,
    )
