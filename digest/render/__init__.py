"""Rendering: Jinja2 → MJML → HTML email and its plain-text twin, once per edition."""
