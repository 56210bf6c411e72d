"""Where templates live and the one Jinja2 environment that renders them.

The wheel carries ``templates/`` inside the package as ``digest/_templates``; a
source checkout uses the top-level ``templates/`` folder; a publication may point
``render.templates_dir`` at its own copy.
"""

from __future__ import annotations

from pathlib import Path

import jinja2

from digest.errors import TemplateError

_PACKAGE = Path(__file__).resolve().parent.parent


def default_templates_dir() -> Path:
    """The shipped templates: inside the installed package, else beside the source."""
    for candidate in (_PACKAGE / "_templates", _PACKAGE.parent / "templates"):
        if (candidate / "email").is_dir():
            return candidate
    raise TemplateError(
        f"the shipped templates are missing (looked in {_PACKAGE / '_templates'} and "
        f"{_PACKAGE.parent / 'templates'}); reinstall the package"
    )


def make_environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """Autoescaping on for markup, off for plain text; undefined names are errors."""
    folder = templates_dir or default_templates_dir()
    if not folder.is_dir():
        raise TemplateError(f"templates folder {folder} does not exist (render.templates_dir)")
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(folder),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "mjml", "mjml.j2", "html.j2"),
            disabled_extensions=("txt", "txt.j2"),
            default=True,
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render_template(env: jinja2.Environment, name: str, context: dict[str, object]) -> str:
    """Render one template, turning Jinja2's errors into a ``TemplateError``."""
    try:
        return env.get_template(name).render(context)
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {exc.name} not found in {env.loader}") from exc
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(f"{exc.filename or name}:{exc.lineno}: {exc.message}") from exc
    except jinja2.UndefinedError as exc:
        raise TemplateError(f"{name}: {exc.message}") from exc
