"""When two links are the same page: the key reads are deduplicated by."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def normalise_url(url: str) -> str:
    """Compare links the way a reader would.

    Scheme and host case, a trailing slash, the fragment and ``utm_*`` tracking
    parameters are ignored.
    """
    parts = urlsplit(url.strip())
    path = parts.path.rstrip("/") or "/"
    query = urlencode(
        [
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not k.startswith("utm_")
        ]
    )
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))
