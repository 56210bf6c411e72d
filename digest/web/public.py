"""Public endpoints: sign up, confirm, leave.

- ``GET /subscribe`` shows the form; ``POST /subscribe`` takes it (honeypot field
  ``website``; a per-IP hourly limit). Whatever the address's state, the answer
  is the same page, so the form reveals nothing about who is subscribed; the
  confirmation email goes out after the response, from a background task.
- ``GET /confirm/{token}`` makes a pending subscriber active.
- ``GET /unsubscribe/{token}`` shows one button (mail scanners follow GETs, so a
  GET never unsubscribes); ``POST`` leaves, either from that button or as an
  RFC 8058 one-click request with the body ``List-Unsubscribe=One-Click``.

Pages come from ``templates/web/``. Responses carry headers that keep tokens out
of Referer headers and forbid framing.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import jinja2
from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError
from starlette.middleware.base import RequestResponseEndpoint

from digest.errors import TransportError
from digest.render.templating import make_environment, render_template
from digest.send.confirmations import Confirmations
from digest.send.transport import open_delivery
from digest.settings import Settings
from digest.web.ratelimit import RateLimiter
from subscribers import audience
from subscribers.addresses import parse_address
from subscribers.db import Database
from subscribers.errors import AddressError, ExpiredTokenError, TokenError
from subscribers.models import LEFT, ConsentMethod, Status, Subscriber
from subscribers.tokens import Claim

log = logging.getLogger("digest.web")

ONE_CLICK = b"List-Unsubscribe=One-Click"
_SECURITY_HEADERS = {
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "Cache-Control": "no-store",
}


class PublicSite:
    """What the endpoints share: settings, database, pages, links, the email."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.pages: jinja2.Environment = make_environment(settings.render.templates_dir)
        self.confirmations = Confirmations.from_settings(settings)
        self.links = self.confirmations.links
        self.limiter = RateLimiter(settings.web.subscribe_per_hour, 3600.0)

    def page(self, template: str, status: int = 200, **context: object) -> HTMLResponse:
        html = render_template(
            self.pages,
            f"web/{template}.html",
            {"publication": self.settings.publication, **context},
        )
        return HTMLResponse(html, status_code=status)

    def send_confirmation(self, subscriber_id: int) -> None:
        """Background task: send if still due; failures are logged, the row stays unsent."""
        try:
            transport = open_delivery(self.settings)
            try:
                self.confirmations.send_one(self.db, transport, subscriber_id)
            finally:
                transport.close()
        except TransportError as exc:
            log.error("confirmation email to subscriber %s not sent: %s", subscriber_id, exc)

    def claimed(self, claim: Claim) -> Subscriber | None:
        with self.db.transaction() as session:
            subscriber = session.get(Subscriber, claim.subscriber_id)
            if not claim.names(subscriber):
                return None
            session.expunge_all()
            return subscriber


def create_app(settings: Settings, db: Database) -> FastAPI:
    site = PublicSite(settings, db)
    app = FastAPI(title=settings.publication.name, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.site = site

    @app.middleware("http")
    async def security_headers(request: Request, call_next: RequestResponseEndpoint) -> Response:
        response = await call_next(request)
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.get("/healthz", response_class=PlainTextResponse)
    def healthz() -> str:
        return "ok"

    @app.get("/subscribe", response_class=HTMLResponse)
    def subscribe_form() -> HTMLResponse:
        return site.page("subscribe", email="", name="", error=None)

    @app.post("/subscribe", response_class=HTMLResponse)
    def subscribe(
        request: Request,
        tasks: BackgroundTasks,
        email: Annotated[str, Form(max_length=320)] = "",
        name: Annotated[str, Form(max_length=200)] = "",
        website: Annotated[str, Form(max_length=500)] = "",
    ) -> HTMLResponse:
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
        try:
            address = parse_address(email)
        except AddressError as exc:
            return site.page("subscribe", 400, email=email, name=name, error=str(exc))
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
    def confirm(token: str) -> HTMLResponse:
        try:
            claim = site.links.signer.read_confirm(token, site.confirmations.max_age_seconds)
        except ExpiredTokenError:
            return site.page(
                "message",
                410,
                title="This link has expired",
                lines=[
                    f"Confirmation links work for {settings.subscribers.confirm_days} days.",
                    "Sign up again and we will send you a fresh one.",
                ],
                subscribe_link=True,
            )
        except TokenError:
            return _invalid_link(site)
        with db.transaction() as session:
            subscriber = session.get(Subscriber, claim.subscriber_id)
            if subscriber is None or not claim.names(subscriber):
                return _invalid_link(site)
            if subscriber.status is Status.pending:
                audience.confirm(session, subscriber, datetime.now(UTC))
            status = subscriber.status
        if status is Status.active:
            return site.page(
                "message",
                title="You are subscribed",
                lines=[f"{settings.publication.name} will arrive in your inbox. Thank you."],
            )
        return site.page(
            "message",
            410,
            title="This link is no longer valid",
            lines=["You left the list after this link was sent. Sign up again to come back."],
            subscribe_link=True,
        )

    @app.get("/unsubscribe/{token}", response_class=HTMLResponse)
    def unsubscribe_page(token: str) -> HTMLResponse:
        try:
            subscriber = site.claimed(site.links.signer.read_unsubscribe(token))
        except TokenError:
            return _invalid_link(site)
        if subscriber is None or subscriber.status in LEFT:
            return _left_page(site)
        return site.page("unsubscribe", email=subscriber.email, token=token)

    @app.post("/unsubscribe/{token}", response_model=None)
    async def unsubscribe(token: str, request: Request) -> Response:
        body = await request.body()
        one_click = ONE_CLICK in body
        try:
            claim = site.links.signer.read_unsubscribe(token)
        except TokenError:
            if one_click:
                return PlainTextResponse("invalid unsubscribe link", status_code=400)
            return _invalid_link(site)
        reason = "one-click unsubscribe (RFC 8058)" if one_click else "unsubscribe page"
        with db.transaction() as session:
            subscriber = session.get(Subscriber, claim.subscriber_id)
            if subscriber is not None and claim.names(subscriber):
                audience.unsubscribe(session, subscriber, datetime.now(UTC), reason)
        if one_click:
            return PlainTextResponse("unsubscribed")
        return _left_page(site)

    return app


def _invalid_link(site: PublicSite) -> HTMLResponse:
    return site.page(
        "message",
        404,
        title="This link is not valid",
        lines=[
            "The link may have been cut short or changed on its way to you.",
            "Try opening it again from the email, or copy the whole address into your browser.",
        ],
    )


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
