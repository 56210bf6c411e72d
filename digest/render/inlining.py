"""Stage 3 of rendering: premailer moves the template's CSS into style attributes.

Only the template's ``<mj-style>`` rules are inlined, so that a client without
``<style>`` support (Gmail reading another provider's account) still shows headings,
links and paragraphs styled. MJML's own reset (``_MJML_RESET``: body, tables, images,
paragraphs) stays a ``<style>`` in the head, as MJML ships it: its components already
carry inline what the layout needs, and Outlook reads the reset's ``mso-table-*`` there.
Inlined, that reset repeated on every table and cell (about 4 KB an edition).
"""

from __future__ import annotations

import logging
from functools import lru_cache

from premailer import Premailer

from digest.errors import RenderError

#: How every MJML-compiled <head> opens its reset <style>.
_MJML_RESET = '<style type="text/css">\n#outlook a'
#: premailer leaves a style so marked where it is, and drops the mark.
_NOT_INLINED = '<style data-premailer="ignore" type="text/css">\n#outlook a'

Rules = tuple[list[tuple[tuple[int, ...], str, str]], list[object]]


class _Premailer(Premailer):  # type: ignore[misc]  # premailer has no type hints
    """premailer reading each style sheet once per process.

    The template's CSS is the same for every edition, and turning it into rules
    (cssutils parses and reserialises every property) cost as much as the inlining.
    The rules are tuples of strings and numbers, safe to share; the settings they
    depend on are the constant ones of :func:`inline_css`.
    """

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Rules:
        rules, leftover = _style_rules(css_body, ruleset_index)
        return list(rules), list(leftover)


@lru_cache(maxsize=64)
def _style_rules(css_body: str, ruleset_index: int) -> Rules:
    rules, leftover = Premailer._parse_style_rules(_configured(""), css_body, ruleset_index)
    return tuple(rules), tuple(leftover)  # type: ignore[return-value]


#: premailer's settings for MJML's output (see :func:`inline_css`); the benchmark's
#: "before" run uses the same ones.
PREMAILER_OPTIONS: dict[str, object] = {
    "keep_style_tags": True,
    "strip_important": False,
    "remove_classes": False,
    "disable_validation": True,
    "allow_network": False,
    "allow_loading_external_files": False,
    "cssutils_logging_level": logging.CRITICAL,
    "cache_css_parsing": True,
    "disable_basic_attributes": ["width"],
}


def _configured(html: str) -> Premailer:
    """premailer set for MJML's output: see :func:`inline_css`."""
    return _Premailer(html, **PREMAILER_OPTIONS)


def inline_css(html: str) -> str:
    """The compiled HTML with the template's CSS inlined, configured for MJML.

    ``@media`` rules and their ``!important`` must stay in a ``<style>`` tag or the
    mobile layout collapses; nothing is fetched from the network. Width attributes
    stay MJML's: premailer would copy CSS ``width:100%`` over an image's
    ``width="160"``, and Outlook on Windows takes that attribute as the image's size.
    """
    # premailer keeps a doctype only when it matches lxml's spelling exactly.
    if html[:15].lower() == "<!doctype html>":
        html = "<!DOCTYPE html>" + html[15:]
    html = html.replace(_MJML_RESET, _NOT_INLINED, 1)
    try:
        return str(_configured(html).transform(pretty_print=False))
    except Exception as exc:  # premailer and lxml raise many kinds; all mean the same here
        raise RenderError(f"CSS inlining failed: {exc}") from exc
