"""The access log without the secrets in it: confirm and unsubscribe tokens are cut.

A confirm or unsubscribe link is a credential: whoever has it can confirm or end
that reader's subscription. uvicorn's access log prints each request's path and
query string, so :class:`HideTokens`, a filter on the ``uvicorn.access`` logger
(installed by :func:`log_config`), rewrites the path before any handler sees it:

- the path segment after ``confirm`` or ``unsubscribe`` becomes ``[token]``
  (wherever it stands, so a proxy that keeps a prefix such as ``/list`` is
  covered, and so is a link cut short);
- in the query string, the value of any parameter whose name contains ``token``
  becomes ``[token]``;
- any other path segment or query value shaped like a signed token (dot-separated
  runs of URL-safe base64, as itsdangerous makes them) is cut too.

Everything else is logged as it was: the method, the status, other paths and values.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any

import uvicorn.config

HIDDEN = "[token]"
#: Path segments followed by a token in our links (see ``digest.send.links``).
TOKEN_ROUTES = frozenset({"confirm", "unsubscribe"})
_SIGNED = re.compile(r"[A-Za-z0-9_\-]{4,}(?:\.[A-Za-z0-9_\-]{4,})+")
_SIGNED_MIN_LENGTH = 24


def _looks_signed(text: str) -> bool:
    return len(text) >= _SIGNED_MIN_LENGTH and _SIGNED.fullmatch(text) is not None


def _path(path: str) -> str:
    segments = path.split("/")
    for index, segment in enumerate(segments):
        after_route = index > 0 and segments[index - 1].lower() in TOKEN_ROUTES
        if segment and (after_route or _looks_signed(segment)):
            segments[index] = HIDDEN
    return "/".join(segments)


def _query(query: str) -> str:
    fields = []
    for field in query.split("&"):
        name, equals, value = field.partition("=")
        if value and ("token" in name.lower() or _looks_signed(value)):
            value = HIDDEN
        fields.append(f"{name}{equals}{value}")
    return "&".join(fields)


def hide_tokens(path_and_query: str) -> str:
    """``path_and_query`` as it may be logged: every token in it replaced by ``[token]``."""
    path, question, query = path_and_query.partition("?")
    return _path(path) + question + (_query(query) if question else "")


class HideTokens(logging.Filter):
    """Cut the tokens from uvicorn's access-log records (their third argument is the path)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str):
            record.args = (*args[:2], hide_tokens(args[2]), *args[3:])
        return True


def log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration, with :class:`HideTokens` on the access log."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config.setdefault("filters", {})["hide_tokens"] = {"()": f"{__name__}.HideTokens"}
    config["loggers"]["uvicorn.access"]["filters"] = ["hide_tokens"]
    return config
