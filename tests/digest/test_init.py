"""`digest init`: a newsroom's own digest.toml, editions folder and secret, asked or given."""

from __future__ import annotations

import io
import os
import pty
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from digest.send.secret import signing_secret
from digest.settings import load_settings
from tests.helpers import run

GIVEN = [
    "--name",
    'The "Harbour" Post',
    "--site-url",
    "https://harbour.example",
    "--postal-address",
    "1 Quay Street, Harbourtown",
    "--contact-email",
    "desk@harbour.example",
    "--sender-email",
    "brief@harbour.example",
    "--public-url",
    "https://list.harbour.example",
]


@pytest.fixture
def no_terminal(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty folder, and stdin that is no terminal (as under cron or in a script)."""
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    return clean_env


def test_init_writes_settings_that_load(
    no_terminal: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The options land in a commented digest.toml the settings loader accepts; the
    editions folder and a private secret key file are made beside it."""
    code, out, err = run(["init", "news", *GIVEN], capsys)
    assert code == 0, err
    path = no_terminal / "news" / "digest.toml"
    assert f"wrote {path}" in out
    assert "warning" not in err
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# ")
    settings = load_settings(path)
    assert settings.publication.name == 'The "Harbour" Post'
    assert settings.publication.site_url == "https://harbour.example"
    assert settings.publication.postal_address == "1 Quay Street, Harbourtown"
    assert settings.publication.contact_email == "desk@harbour.example"
    assert settings.publication.sender_email == "brief@harbour.example"
    assert settings.web.public_url == "https://list.harbour.example"
    monkeypatch.chdir(no_terminal / "news")  # the paths in the file are the folder's
    assert settings.editions_dir.is_dir()
    secret_file = settings.secret_key_file
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    assert signing_secret(settings) == secret_file.read_text().strip()


def test_init_without_a_terminal_takes_the_defaults_and_names_them(
    no_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """No terminal, no options: the example values, and a warning naming each of them."""
    code, out, err = run(["init", "--name", "Harbour Post"], capsys)
    assert code == 0, err
    settings = load_settings(no_terminal / "digest.toml")
    assert settings.publication.name == "Harbour Post"
    assert settings.publication.contact_email == "desk@news.example.org"
    assert err == (
        "warning: still the example's values: site_url, postal_address, contact_email, "
        "sender_email, public_url; edit digest.toml before the first send\n"
    )
    assert "next: digest new" in out


def test_init_keeps_an_existing_secret(
    no_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A secret key already in use is kept: links already sent keep working."""
    (no_terminal / "digest.secret").write_text("an-existing-secret-of-some-length\n")
    code, out, _ = run(["init"], capsys)
    assert code == 0
    assert "kept the existing secret key file" in out
    assert signing_secret(load_settings()) == "an-existing-secret-of-some-length"


def test_init_refuses_to_overwrite(no_terminal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An existing digest.toml is left as it is, with an error saying so."""
    (no_terminal / "digest.toml").write_text('[publication]\nname = "Ours"\n')
    code, out, err = run(["init", *GIVEN], capsys)
    assert code == 1 and out == ""
    assert err.startswith("error: digest.toml already exists; digest init never overwrites it")
    assert (no_terminal / "digest.toml").read_text() == '[publication]\nname = "Ours"\n'
    assert not (no_terminal / "editions").exists()


def test_init_refuses_a_bad_option(no_terminal: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """An address that is none is refused by name, and nothing is written."""
    code, _, err = run(["init", "--sender-email", "brief at harbour"], capsys)
    assert code == 2  # a usage error, as click reports them
    assert "--sender-email" in err and "not a valid email address" in err
    assert list(no_terminal.iterdir()) == []


def test_every_commented_example_is_a_valid_setting(
    no_terminal: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Removing the `# ` of any `# key = value` line in the written file still loads."""
    assert run(["init"], capsys)[0] == 0
    text = (no_terminal / "digest.toml").read_text(encoding="utf-8")
    uncommented, count = re.subn(r"(?m)^# (\w+ = )", r"\1", text)
    assert count >= 15
    (no_terminal / "uncommented.toml").write_text(uncommented, encoding="utf-8")
    settings = load_settings(no_terminal / "uncommented.toml")
    assert settings.schedule.editors == ["desk@news.example.org"]
    assert settings.delivery.dkim_selector == "brief"


def test_init_asks_on_a_terminal(clean_env: Path) -> None:
    """On a terminal it asks for what no option gave, and asks again after a bad answer."""
    script = Path(sys.executable).with_name("digest")
    assert script.exists(), "install the project (pip install -e '.[test]') first"
    terminal, child_end = pty.openpty()
    answers = [
        "Harbour Post",  # name
        "",  # postal address: the example's
        "not-an-address",  # contact address: refused, asked again
        "desk@harbour.example",
        "brief@harbour.example",  # sender
        "https://list.harbour.example/",  # public URL
    ]
    with subprocess.Popen(
        [str(script), "init", "--site-url", "https://harbour.example"],
        stdin=child_end,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as child:
        os.close(child_end)
        os.write(terminal, "".join(f"{answer}\n" for answer in answers).encode())
        out, err = child.communicate(timeout=120)
    os.close(terminal)
    assert child.returncode == 0, err
    assert "Publication name [The Morning Ledger]: " in out
    assert "Publication website" not in out  # given as an option
    assert out.count("Contact address (Reply-To, story suggestions)") == 2
    assert "not a valid email address" in out
    assert "still the example's values: postal_address;" in err
    settings = load_settings(clean_env / "digest.toml")
    assert settings.publication.name == "Harbour Post"
    assert settings.publication.site_url == "https://harbour.example"
    assert settings.publication.contact_email == "desk@harbour.example"
    assert settings.publication.sender_email == "brief@harbour.example"
    assert settings.web.public_url == "https://list.harbour.example"
