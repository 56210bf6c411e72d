"""One settings object, loaded once at the edge (CLI, service, web app).

Values come from, highest priority first:

1. explicit arguments: ``Settings(database_url=…)`` or ``load_settings(overrides=…)``,
   as a test, a benchmark or a command option gives them;
2. ``DIGEST_*`` environment variables, with ``__`` between table and key:
   ``DIGEST_PUBLICATION__NAME="The Daily Ledger"``;
3. the settings file: ``digest.toml`` in the working directory, or the file
   ``DIGEST_CONFIG`` / ``--config`` names;
4. built-in defaults that make the demo work.

Tables merge key by key across the layers: ``DIGEST_PUBLICATION__NAME`` replaces
the file's ``[publication] name`` and keeps its other keys. Unknown keys in the
file are errors, so a typo is never silently ignored. The tables themselves are
defined in :mod:`digest.settings.sections`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    InitSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from digest.errors import ConfigError
from digest.settings.explain import Sources, describe
from digest.settings.sections import (
    AudienceSettings,
    DeliverySettings,
    FeedbackSettings,
    Publication,
    ReadsSettings,
    RenderSettings,
    ScheduleSettings,
    WebSettings,
    redact_url,
)

__all__ = [
    "DEFAULT_CONFIG_FILE",
    "AudienceSettings",
    "DeliverySettings",
    "FeedbackSettings",
    "Publication",
    "ReadsSettings",
    "RenderSettings",
    "ScheduleSettings",
    "Settings",
    "WebSettings",
    "load_settings",
    "redact_url",
]

DEFAULT_CONFIG_FILE = Path("digest.toml")
#: The settings file's values while ``load_settings`` builds a ``Settings``: the
#: lowest source but the defaults (a context variable, so threads don't mix them).
_FILE_VALUES: ContextVar[Mapping[str, Any] | None] = ContextVar("_FILE_VALUES", default=None)


class Settings(BaseSettings):
    """Everything the publisher can be told, in one object."""

    model_config = SettingsConfigDict(
        env_prefix="DIGEST_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    editions_dir: Path = Path("editions")
    demo_dir: Path = Path("digest-demo")
    database_url: str = Field(
        default="sqlite:///digest.db",
        description="sqlite:///path.db (default, in the working directory) or postgresql://…",
    )
    delivery_url: SecretStr = Field(
        default=SecretStr("maildir:outbox"),
        description="maildir:///abs/path or maildir:relative/path (an outbox; the default), "
        "smtp://host:port, smtp+starttls://user:pass@host:587, smtps://user:pass@host:465",
    )
    secret_key: SecretStr | None = Field(
        default=None, description="Signs confirm and unsubscribe links; 16+ characters."
    )
    secret_key_file: Path = Field(
        default=Path("digest.secret"),
        description="Where a generated secret key is kept when secret_key is not set.",
    )
    publication: Publication = Publication()
    render: RenderSettings = RenderSettings()
    web: WebSettings = WebSettings()
    delivery: DeliverySettings = DeliverySettings()
    schedule: ScheduleSettings = ScheduleSettings()
    reads: ReadsSettings = ReadsSettings()
    subscribers: AudienceSettings = AudienceSettings()
    feedback: FeedbackSettings = FeedbackSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Highest first: explicit arguments, then DIGEST_* variables, then the file.
        # No .env file and no secrets directory: only what this docstring names.
        file = InitSettingsSource(settings_cls, init_kwargs=dict(_FILE_VALUES.get() or {}))
        return (init_settings, env_settings, file)


def _read_toml(path: Path) -> tuple[str, dict[str, Any]]:
    """The file's text (to point at a bad key's line) and its values."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: not UTF-8 ({exc.reason})") from exc
    try:
        return text, tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from exc


def load_settings(
    config_file: Path | None = None, overrides: Mapping[str, Any] | None = None
) -> Settings:
    """Settings from ``overrides``, the environment, ``config_file`` (or ``./digest.toml``).

    A file named explicitly must exist; the default one is optional. ``overrides``
    (nested like the file: ``{"delivery": {"connections": 2}}``) win over everything.
    """
    data: dict[str, Any] = {}
    text = ""
    origin = "defaults and DIGEST_* environment"
    if config_file is None and DEFAULT_CONFIG_FILE.is_file():
        config_file = DEFAULT_CONFIG_FILE
    elif config_file is not None and not config_file.is_file():
        raise ConfigError(
            f"settings file {config_file} does not exist (named by --config or DIGEST_CONFIG)"
        )
    if config_file is not None:
        text, data = _read_toml(config_file)
        origin = f"{config_file} and DIGEST_* environment"
    token = _FILE_VALUES.set(data)
    try:
        return Settings(**(overrides or {}))
    except ValidationError as exc:
        sources = Sources(config_file, text, data, overrides or {})
        raise ConfigError(describe(Settings, exc, origin, sources)) from exc
    finally:
        _FILE_VALUES.reset(token)
