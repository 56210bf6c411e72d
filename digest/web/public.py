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

Pages come from ``templates/web/``. Request bodies are capped and every response
carries the security headers (``digest.web.asgi``).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Annotated

import jinja2
from fastapi import BackgroundTasks, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from starlette.types import ASGIApp

from digest.errors import TransportError
from digest.render.templating import make_environment, render_template
from digest.send.confirmations import Confirmations
from digest.send.secret import signing_secret
from digest.send.transport import open_delivery
from digest.settings import Settings
from digest.web.asgi import BodyLimit, SecurityHeaders
from digest.web.forms import FormGuard
from digest.web.ratelimit import RateLimiter
from subscribers import audience
from subscribers.addresses import parse_address
from subscribers.audience import MAX_NAME
from subscribers.db import Database
from subscribers.errors import AddressError, ExpiredTokenError, TokenError
from subscribers.models import LEFT, ConsentMethod, Status, Subscriber
from subscribers.tokens import Claim

log = logging.getLogger("digest.web")

ONE_CLICK = b"List-Unsubscribe=One-Click"
MAX_EMAIL = 320  # RFC 5321's longest path, and the column's width


class PublicApp(FastAPI):
    """FastAPI with the body cap and the security headers outside everything.

    Outside Starlette's own error handling, so the 500 page gets the headers too,
    and no middleware or endpoint reads a body before the cap is checked.
    """

    def build_middleware_stack(self) -> ASGIApp:
        return SecurityHeaders(BodyLimit(super().build_middleware_stack()))


class PublicSite:
    """What the endpoints share: settings, database, pages, links, the email."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self.settings = settings
        self.db = db
        self.pages: jinja2.Environment = make_environment(settings.render.templates_dir)
        self.confirmations = Confirmations.from_settings(settings)
        self.links = self.confirmations.links
        self.limiter = RateLimiter(settings.web.subscribe_per_hour, 3600.0)
        self.guard = FormGuard(signing_secret(settings), settings.web.public_url)

    def page(self, template: str, status: int = 200, **context: object) -> HTMLResponse:
        html = render_template(
            self.pages,
            f"web/{template}.html",
            {"publication": self.settings.publication, **context},
        )
        return HTMLResponse(html, status_code=status)

    def form(
        self,
        request: Request,
        status: int = 200,
        *,
        email: str = "",
        name: str = "",
        error: str | None = None,
        error_field: str = "email",
    ) -> HTMLResponse:
        """The sign-up form, with a fresh token and the cookie it must match."""
        nonce, token = self.guard.token(request)
        response = self.page(
            "subscribe",
            status,
            email=email,
            name=name,
            error=error,
            error_field=error_field,
            form_token=token,
        )
        return self.guard.attach(response, request, nonce)

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

    def pending_for_link(self, session: Session, token: str) -> Subscriber | HTMLResponse:
        """The pending subscriber a confirm link may confirm, or the page saying why not."""
        try:
            claim = self.links.signer.read_confirm(token, self.confirmations.max_age_seconds)
        except ExpiredTokenError:
            return self.page(
                "message",
                410,
                title="This link has expired",
                lines=[
                    f"Confirmation links work for {self.settings.subscribers.confirm_days} days.",
                    "Sign up again and we will send you a fresh one.",
                ],
                subscribe_link=True,
            )
        except TokenError:
            return _invalid_link(self)
        subscriber = session.get(Subscriber, claim.subscriber_id)
        if subscriber is None or not claim.names(subscriber):
            return _invalid_link(self)
        if not claim.is_for(audience.signed_up_at(session, subscriber)):
            return self.page(
                "message",
                410,
                title="This link has been replaced",
                lines=[
                    "The address signed up again after this link was sent, so it no longer works.",
                    "Use the link in the newest email from us, or sign up again to get a new one.",
                ],
                subscribe_link=True,
            )
        if subscriber.status is Status.active:
            return self.subscribed_page()
        if subscriber.status in LEFT:
            return self.page(
                "message",
                410,
                title="This link is no longer valid",
                lines=["You left the list after this link was sent. Sign up again to come back."],
                subscribe_link=True,
            )
        return subscriber

    def subscribed_page(self) -> HTMLResponse:
        return self.page(
            "message",
            title="You are subscribed",
            lines=[f"{self.settings.publication.name} will arrive in your inbox. Thank you."],
        )


def create_app(settings: Settings, db: Database) -> FastAPI:
    site = PublicSite(settings, db)
    app = PublicApp(
        title=settings.publication.name, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.site = site

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
            return _invalid_link(site)
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


def _too_long(email: str, name: str) -> tuple[str | None, str]:
    """(what is wrong, which field) when a field is longer than we store."""
    if len(email) > MAX_EMAIL:
        return f"The email address is longer than {MAX_EMAIL} characters.", "email"
    if len(name) > MAX_NAME:
        return f"The name is longer than {MAX_NAME} characters.", "name"
    return None, "email"


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
