"""``digest init``: a newsroom's own ``digest.toml``, editions folder and secret key.

Without ``digest.toml`` every command runs on the example settings (and says so). This
command writes one, commented, with the publication's name, addresses and links
asked for on a terminal or given as options (without a terminal, the options and
otherwise the example values, which it then names). The file is loaded with the
settings loader before it is written, so what it writes always loads; an existing
``digest.toml`` is never overwritten.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from digest.cli.options import console
from digest.errors import ConfigError

if TYPE_CHECKING:  # pydantic and the settings load when `digest init` runs, not for `--help`
    from pydantic import BaseModel

#: The editions folder and the secret key file the file below names, made beside it.
EDITIONS_DIR = Path("editions")
SECRET_KEY_FILE = Path("digest.secret")

TEMPLATE = """\
# The settings of {name}, written by `digest init`.
#
# Paths here are relative to the folder `digest` runs in: run it from this folder.
# Any key can be overridden by an environment variable: DIGEST_ and the key, with __
# between table and key (DIGEST_DELIVERY_URL, DIGEST_PUBLICATION__NAME). Unknown keys
# are errors. A line `# key = value` shows a default or an example: remove the `# `
# to set it. The README's "Settings" section describes every key.

editions_dir = "editions"               # one Markdown file a day: editions/YYYY-MM-DD.md
database_url = "sqlite:///digest.db"    # or postgresql://user@host/dbname
delivery_url = "maildir:outbox"         # a local Maildir outbox: nothing leaves this machine.
# To send: smtp://host:25, smtp+starttls://user:pass@host:587 or smtps://user:pass@host:465
# (or DIGEST_DELIVERY_URL, which keeps the password out of this file).
secret_key_file = "digest.secret"       # signs confirm and unsubscribe links; mode 0600
# secret_key = "the same long random text on every machine"   # instead of the file

[publication]
name = {name}
site_url = {site_url}
# Shown in every email's footer:
postal_address = {postal_address}
# Reply-To, and where "Suggest a story" writes to:
contact_email = {contact_email}
# The From: address:
sender_email = {sender_email}
# sender_name = "The Desk"              # the From: name; default: name
# brand_color = "#1d4e89"
# logo_url = "https://news.example.org/logo.png"

[web]
# Where readers reach `digest serve`: the base of every link in an email.
public_url = {public_url}
# host = "127.0.0.1"
# port = 8000

[schedule]
# daily_at = "07:00"                    # local time of the daily send (`digest run`)
# timezone = "Europe/London"            # IANA name
# policy = "auto"                       # auto | approval | off
# editors = ["desk@news.example.org"]   # told by email when an edition can't go out

[delivery]
# connections = 4                       # SMTP connections in parallel
# rate_per_second = 0                   # 0: no limit
# verp = false                          # envelope sender bounces+TOKEN@domain
# dkim_selector = "brief"               # DKIM signing, with dkim_private_key_file
# dkim_private_key_file = "dkim.pem"

[feedback]
# imap_url = "imaps://desk%40news.example.org:app-password@imap.example.org/INBOX"
"""


@dataclass(frozen=True)
class Question:
    """One value ``digest init`` asks for: its key, its prompt and the settings table
    (``publication`` or ``web``) whose model checks it."""

    key: str
    prompt: str
    table: str

    @property
    def model(self) -> type[BaseModel]:
        from digest.settings import Publication, WebSettings

        return WebSettings if self.table == "web" else Publication


QUESTIONS = (
    Question("name", "Publication name", "publication"),
    Question("site_url", "Publication website (https://…)", "publication"),
    Question("postal_address", "Postal address (in every email's footer)", "publication"),
    Question("contact_email", "Contact address (Reply-To, story suggestions)", "publication"),
    Question("sender_email", "Sender address (From:)", "publication"),
    Question("public_url", "Public URL of `digest serve` (base of every link)", "web"),
)


def _default(question: Question) -> str:
    return str(question.model.model_fields[question.key].default)


def checked(question: Question, value: str) -> str:
    """``value`` if the setting accepts it; ``typer.BadParameter`` (asked again) if not."""
    from pydantic import ValidationError

    value = value.strip()
    try:
        question.model.model_validate({question.key: value})
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise typer.BadParameter(reason, param_hint=f"--{question.key.replace('_', '-')}") from exc
    return value


def _answer(question: Question, given: str | None, ask: bool) -> str:
    if given is not None:
        return checked(question, given)
    if not ask:
        return _default(question)
    answer: str = typer.prompt(
        question.prompt,
        default=_default(question),
        value_proc=lambda value: checked(question, value),
    )
    return answer


def settings_text(answers: dict[str, str]) -> str:
    """The commented ``digest.toml`` with ``answers`` filled in as TOML strings."""
    import tomlkit

    values = {key: tomlkit.item(value).as_string() for key, value in answers.items()}
    return TEMPLATE.format(**values)


def _validate(folder: Path, text: str) -> None:
    """Load ``text`` with the settings loader, from a file beside where it will go."""
    from digest.settings import load_settings

    fd, name = tempfile.mkstemp(dir=folder, prefix=".digest.", suffix=".toml")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        load_settings(Path(name))
    finally:
        Path(name).unlink(missing_ok=True)


def init(
    folder: Annotated[
        Path, typer.Argument(help="Where to write digest.toml (made if missing).")
    ] = Path("."),
    name: Annotated[str | None, typer.Option("--name", help="The publication's name.")] = None,
    site_url: Annotated[
        str | None, typer.Option("--site-url", help="The publication's website.")
    ] = None,
    postal_address: Annotated[
        str | None, typer.Option("--postal-address", help="Shown in every email's footer.")
    ] = None,
    contact_email: Annotated[
        str | None, typer.Option("--contact-email", help="Reply-To and story suggestions.")
    ] = None,
    sender_email: Annotated[
        str | None, typer.Option("--sender-email", help="The From: address.")
    ] = None,
    public_url: Annotated[
        str | None,
        typer.Option("--public-url", help="Where readers reach `digest serve` (link base)."),
    ] = None,
) -> None:
    """Write a commented digest.toml, the editions folder and the secret key (asks on a terminal)."""
    from digest.send.secret import secret_from_file
    from digest.settings import DEFAULT_CONFIG_FILE

    path = folder / DEFAULT_CONFIG_FILE
    if path.exists():
        raise ConfigError(
            f"{path} already exists; digest init never overwrites it: edit it, "
            "or move it away and run digest init again"
        )
    given = {
        "name": name,
        "site_url": site_url,
        "postal_address": postal_address,
        "contact_email": contact_email,
        "sender_email": sender_email,
        "public_url": public_url,
    }
    ask = sys.stdin.isatty()
    answers = {q.key: _answer(q, given[q.key], ask) for q in QUESTIONS}
    text = settings_text(answers)
    editions = folder / EDITIONS_DIR
    secret_file = folder / SECRET_KEY_FILE
    secret_existed = secret_file.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        _validate(folder, text)
        editions.mkdir(exist_ok=True)
        secret_from_file(secret_file)
        with path.open("x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError as exc:
        raise ConfigError(f"{path} already exists; digest init never overwrites it") from exc
    except OSError as exc:
        raise ConfigError(f"cannot write {exc.filename or path}: {exc.strerror}") from exc
    out = console()
    out.print(f"wrote {path.resolve()}", markup=False)
    out.print(f"editions folder: {editions.resolve()}", markup=False)
    kept = "kept the existing" if secret_existed else "wrote a new"
    out.print(f"{kept} secret key file {secret_file.resolve()} (mode 0600)", markup=False)
    examples = [q.key for q in QUESTIONS if answers[q.key] == _default(q)]
    if examples:
        console(stderr=True).print(
            f"warning: still the example's values: {', '.join(examples)}; "
            f"edit {path} before the first send",
            markup=False,
        )
    here = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    out.print(
        f"next: {here}digest new, digest subscribers add EMAIL, then digest send DATE",
        markup=False,
    )
