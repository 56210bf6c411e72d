"""What the web app's pages share: the app class, the site (settings, database,
pages, links, the email), and the words the pages use for the schedule.

``digest.web.public`` holds the sign-up, confirm and leave endpoints,
``digest.web.pages`` the front page and the error pages.
"""

from __future__ import annotations

import logging

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session
from starlette.types import ASGIApp

from digest.errors import TransportError
from digest.render.templating import make_environment, render_template
from digest.send.confirmations import Confirmations
from digest.send.secret import signing_secret
from digest.send.transport import open_delivery
from digest.settings import ScheduleSettings, Settings
from digest.web.asgi import BodyLimit, SecurityHeaders
from digest.web.forms import FormGuard
from digest.web.ratelimit import RateLimiter
from subscribers import audience
from subscribers.db import Database
from subscribers.errors import ExpiredTokenError, TokenError
from subscribers.models import LEFT, Status, Subscriber
from subscribers.tokens import Claim

log = logging.getLogger("digest.web")

#: The part of the day each local hour of the daily send falls in; other hours: "every day".
_PARTS_OF_DAY = (
    (range(5, 12), "morning"),
    (range(12, 17), "afternoon"),
    (range(17, 22), "evening"),
)


def schedule_phrase(schedule: ScheduleSettings) -> str | None:
    """When the daily edition goes out, in words ("every evening at 18:00 (Europe/London)").

    None when no daily send is scheduled (policy ``off``): the pages then promise no time.
    """
    if schedule.policy == "off":
        return None
    hour = int(schedule.daily_at.split(":")[0])
    when = next((f"every {part}" for hours, part in _PARTS_OF_DAY if hour in hours), "every day")
    return f"{when} at {schedule.daily_at} ({schedule.timezone})"


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
        self.schedule = schedule_phrase(settings.schedule)

    def page(self, template: str, status: int = 200, **context: object) -> HTMLResponse:
        html = render_template(
            self.pages,
            f"web/{template}.html",
            {"publication": self.settings.publication, "schedule": self.schedule, **context},
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
            return invalid_link(self)
        subscriber = session.get(Subscriber, claim.subscriber_id)
        if subscriber is None or not claim.names(subscriber):
            return invalid_link(self)
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


def invalid_link(site: PublicSite) -> HTMLResponse:
    return site.page(
        "message",
        404,
        title="This link is not valid",
        lines=[
            "The link may have been cut short or changed on its way to you.",
            "Try opening it again from the email, or copy the whole address into your browser.",
        ],
    )
