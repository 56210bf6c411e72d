"""The tables of ``digest.toml``: one model per table, each value checked when loaded.

Every model is frozen and forbids unknown keys, so a typo is an error naming the
key, never a value silently ignored. :class:`digest.settings.Settings` gathers them.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, EmailStr, Field, SecretStr, field_validator

_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")


def redact_url(url: str) -> str:
    """``url`` with its password, if any, shown as ``***``: safe in errors, logs and output.

    The one way a URL that may carry a password (``delivery_url``, ``feedback.imap_url``)
    is ever shown. It works on the text, not on a parse: a password with an unencoded
    ``/ ? # @`` makes ``urlsplit`` put part of it in the host, port or path. Everything
    from after the scheme to the last ``@`` is taken as the user info, and everything
    in it after the first ``:`` as the password.
    """
    user_info, at, rest = url.rpartition("@")
    scheme, separator, user_and_password = user_info.partition("://")
    if not separator:
        scheme, separator, user_and_password = user_info.partition(":")
    user, colon, _password = user_and_password.partition(":")
    if not at or not colon:
        return url
    return f"{scheme}{separator}{user}:***@{rest}"


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("must be an absolute http:// or https:// URL")
    return value


class Publication(BaseModel):
    """Who publishes the briefing: shown in every email and used in its headers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "The Morning Ledger"
    site_url: str = "https://news.example.org"
    contact_email: EmailStr = "desk@news.example.org"
    postal_address: str = "12 Harbour Road, Port Example, EX1 2AB, United Kingdom"
    sender_name: str | None = None
    sender_email: EmailStr = "briefing@news.example.org"
    brand_color: str = "#1d4e89"
    logo_url: str | None = None
    share_url: str | None = Field(
        default=None,
        description="Where 'Share your story' leads; a mailto: to the contact address if unset.",
    )
    suggest_subject: str = "Story suggestion"

    @field_validator("site_url", "logo_url")
    @classmethod
    def _urls(cls, value: str | None) -> str | None:
        return None if value is None else _http_url(value)

    @field_validator("share_url")
    @classmethod
    def _share(cls, value: str | None) -> str | None:
        if value is None or value.startswith("mailto:"):
            return value
        return _http_url(value)

    @field_validator("brand_color")
    @classmethod
    def _colour(cls, value: str) -> str:
        if not _HEX_COLOUR.match(value):
            raise ValueError("must be a hex colour such as '#1d4e89'")
        return value

    @property
    def from_name(self) -> str:
        return self.sender_name or self.name

    @property
    def suggest_url(self) -> str:
        return f"mailto:{self.contact_email}?subject={quote(self.suggest_subject)}"

    @property
    def share_link(self) -> str:
        if self.share_url:
            return self.share_url
        return f"mailto:{self.contact_email}?subject={quote('Share my story')}"


class RenderSettings(BaseModel):
    """How editions are rendered."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_html_bytes: int = Field(
        default=100_000,
        gt=0,
        description="Refuse HTML larger than this; Gmail clips past about 102 KB.",
    )
    templates_dir: Path | None = Field(
        default=None,
        description="A publication's own copy of templates/; the shipped one if unset.",
    )


class WebSettings(BaseModel):
    """The public web endpoints started by ``digest serve``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    public_url: str = Field(
        default="http://127.0.0.1:8000",
        description="Where readers reach `digest serve`; the base of confirm and unsubscribe links.",
    )
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    subscribe_per_hour: int = Field(
        default=10, ge=1, description="Sign-ups accepted from one IP address per hour."
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1",
        description="Proxies whose X-Forwarded-For is trusted for the client's address.",
    )

    @field_validator("public_url")
    @classmethod
    def _public(cls, value: str) -> str:
        return _http_url(value).rstrip("/")


class AudienceSettings(BaseModel):
    """Double opt-in."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    confirm_days: int = Field(default=7, ge=1, description="How long a confirmation link works.")
    resend_minutes: int = Field(
        default=15, ge=0, description="At most one confirmation email per address this often."
    )
    form_version: str = Field(
        default="sign-up form v1",
        description="Names the sign-up form's wording; recorded with each web consent.",
    )


class DeliverySettings(BaseModel):
    """How ``digest send`` delivers: parallelism, pace, retries, headers, signing."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connections: int = Field(default=4, ge=1, le=64, description="SMTP connections in parallel.")
    processes: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Sender processes sharing the connections; 0: one per CPU core when "
        "more than 5,000 messages are due, else one.",
    )
    rate_per_second: float = Field(
        default=0, ge=0, description="At most this many messages a second in all; 0: no limit."
    )
    batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Rows a sender claims at once."
    )
    max_attempts: int = Field(default=6, ge=1, description="Tries before a deferred row fails.")
    retry_base_seconds: float = Field(
        default=60, gt=0, description="First retry delay; doubled each time, with jitter."
    )
    retry_max_seconds: float = Field(default=3600, gt=0)
    pause_after_errors: int = Field(
        default=50, ge=1, description="Consecutive failures that pause the send."
    )
    timeout_seconds: float = Field(default=30, gt=0, description="SMTP connection timeout.")
    verp: bool = Field(
        default=False, description="Envelope sender bounces+TOKEN@domain, one per delivery."
    )
    bounce_address: EmailStr | None = Field(
        default=None, description="Envelope sender; default bounces@ the sender's domain."
    )
    unsubscribe_address: EmailStr | None = Field(
        default=None,
        description="mailto: in List-Unsubscribe (as unsubscribe+TOKEN@…); default "
        "unsubscribe@ the sender's domain.",
    )
    list_id: str | None = Field(
        default=None, description="List-Id; default 'Name <briefing.sender-domain>'."
    )
    dkim_selector: str | None = None
    dkim_domain: str | None = Field(default=None, description="Default: the sender's domain.")
    dkim_private_key_file: Path | None = None


class ScheduleSettings(BaseModel):
    """When ``digest run`` assembles and sends each day's edition."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    daily_at: str = Field(default="07:00", description="Local time of the daily send (HH:MM).")
    timezone: str = Field(default="Europe/London", description="IANA time zone name.")
    policy: Literal["auto", "approval", "off"] = "auto"
    assemble_at: str = Field(
        default="06:00", description="approval policy: when the draft goes to the editors."
    )
    editors: list[EmailStr] = Field(default_factory=list)
    grace_minutes: int = Field(
        default=60, ge=0, description="A job missed by less than this still runs when back."
    )

    @field_validator("daily_at", "assemble_at")
    @classmethod
    def _clock_time(cls, value: str) -> str:
        if not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
            raise ValueError("must be a 24-hour time such as '07:00'")
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}; use an IANA name") from exc
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class ReadsSettings(BaseModel):
    """Where recommended reads come from and how many an edition carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    feeds: list[str] = Field(default_factory=list, description="Atom/RSS feeds of reads.")
    max_reads: int = Field(default=8, ge=0, description="At most this many reads an edition.")
    dedupe_days: int = Field(
        default=30, ge=0, description="Links recommended this recently are not repeated."
    )
    fetch_timeout_seconds: float = Field(default=5, gt=0)

    @field_validator("feeds")
    @classmethod
    def _feed_urls(cls, value: list[str]) -> list[str]:
        return [_http_url(url) for url in value]


class FeedbackSettings(BaseModel):
    """Where readers' replies, bounces and complaints are read from, and what they change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    imap_url: SecretStr | None = Field(
        default=None,
        description="imaps://user:password@host/INBOX, or imap:// (STARTTLS when offered).",
    )
    imap_move_to: str | None = Field(
        default=None,
        description="Move filed messages to this folder; unset: flag them $DigestFiled in place.",
    )
    poll_minutes: float = Field(
        default=5, gt=0, description="How often `digest run` fetches from the mailbox."
    )
    timeout_seconds: float = Field(default=60, gt=0, description="IMAP connection timeout.")
    bounce_threshold: int = Field(
        default=1,
        ge=1,
        description="Deliveries hard-bounced (5.1.x: no such address) before a subscriber "
        "is marked bounced.",
    )
    soft_bounce_threshold: int = Field(
        default=3,
        ge=1,
        description="Deliveries failed for good for other reasons (mailbox full, refused "
        "by policy) before a subscriber is marked bounced.",
    )
    listen_host: str = "127.0.0.1"
    listen_port: int = Field(default=2525, ge=1, le=65535)
    max_message_mb: float = Field(
        default=40,
        gt=0,
        description="`digest feedback listen` refuses larger messages; larger ones fetched "
        "or imported are stored but not parsed (filed as other).",
    )
    addresses: list[EmailStr] = Field(
        default_factory=list,
        description="More addresses `digest feedback listen` accepts, beside the contact, "
        "unsubscribe and bounce addresses.",
    )
    reply_languages: list[str] = Field(
        default_factory=lambda: ["en", "de", "fr", "es", "it", "nl", "pl", "sv", "da"],
        description="Languages of the quote headers ('On … wrote:') stripped from replies.",
    )

    @field_validator("imap_url")
    @classmethod
    def _imap(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        try:  # the message of either error would quote part of the password
            parts = urlsplit(value.get_secret_value())
            parts.port  # noqa: B018 - raises on a password with an unencoded / ? or #
        except ValueError:
            parts = urlsplit("")
        if parts.scheme not in ("imap", "imaps") or not parts.hostname:
            raise ValueError(
                "must be imaps://user:password@host/FOLDER or imap://… "
                "(percent-encode / ? # @ : in the user name or password)"
            )
        return value
