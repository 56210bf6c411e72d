from __future__ import annotations

import os
import tomllib
from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.settings import Settings, WebSettings, load_settings
from digest.settings.explain import key_line
from tests.conftest import TEST_RUN_VARIABLES


@pytest.fixture(autouse=True)
def _isolated(clean_env: Path) -> None:
    """Every test here starts from defaults in an empty folder."""


def test_defaults_work_without_a_file() -> None:
    """With no digest.toml the demo defaults apply."""
    settings = load_settings()
    assert settings.publication.name == "The Morning Ledger"
    assert settings.render.max_html_bytes == 100_000
    assert settings.editions_dir == Path("editions")


def test_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """digest.toml sets values; DIGEST_* variables override them, table by table."""
    (tmp_path / "digest.toml").write_text(
        'editions_dir = "issues"\n[publication]\nname = "File Name"\nsite_url = "https://f.example"\n'
    )
    monkeypatch.setenv("DIGEST_PUBLICATION__NAME", "Env Name")
    settings = load_settings()
    assert settings.publication.name == "Env Name"
    assert settings.publication.site_url == "https://f.example"
    assert settings.editions_dir == Path("issues")


def test_named_config_file(tmp_path: Path) -> None:
    """A file named by --config/DIGEST_CONFIG is used instead of ./digest.toml."""
    other = tmp_path / "other.toml"
    other.write_text('[publication]\nsender_name = "Desk"\n')
    assert load_settings(other).publication.from_name == "Desk"


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('[publication]\nsite_url = "ftp://x"\n', "publication.site_url"),
        ('[publication]\ncontact_email = "not an address"\n', "publication.contact_email"),
        ("[render]\nmax_html_bytes = -1\n", "render.max_html_bytes"),
        ("unknown = 1\n", "unknown: unknown setting"),
    ],
)
def test_invalid_values_name_the_setting(tmp_path: Path, toml: str, expected: str) -> None:
    """Each bad value is reported with its dotted name and the file."""
    (tmp_path / "digest.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)
    assert "digest.toml" in str(caught.value)


def test_precedence_arguments_environment_file_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Explicit arguments beat DIGEST_* variables, which beat the file, which beats defaults."""
    (tmp_path / "digest.toml").write_text(
        'database_url = "sqlite:///file.db"\ndelivery_url = "maildir:file-outbox"\n'
        'editions_dir = "file-editions"\n'
        '[publication]\nname = "File Name"\nsender_name = "File Desk"\n'
    )
    monkeypatch.setenv("DIGEST_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("DIGEST_DELIVERY_URL", "smtp://127.0.0.1:9")
    monkeypatch.setenv("DIGEST_PUBLICATION__NAME", "Env Name")
    settings = load_settings(
        overrides={"database_url": "sqlite:///argument.db", "publication": {"name": "Arg Name"}}
    )
    assert settings.database_url == "sqlite:///argument.db"  # argument over environment
    assert settings.publication.name == "Arg Name"  # argument over environment, in a table
    assert settings.delivery_url.get_secret_value() == "smtp://127.0.0.1:9"  # env over file
    assert settings.publication.sender_name == "File Desk"  # file, the table merged key by key
    assert settings.editions_dir == Path("file-editions")  # file over default
    assert settings.demo_dir == Path("digest-demo")  # default


def test_settings_built_in_code_ignore_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test or benchmark that builds Settings(...) gets what it asked for, whatever the shell says."""
    monkeypatch.setenv("DIGEST_DATABASE_URL", "sqlite:///env.db")
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", "https://env.example")
    settings = Settings(
        database_url="sqlite:///mine.db", web=WebSettings(public_url="https://mine.example")
    )
    assert settings.database_url == "sqlite:///mine.db"
    assert settings.web.public_url == "https://mine.example"


def test_shell_settings_do_not_reach_tests() -> None:
    """The autouse fixture in conftest.py removes DIGEST_* settings; test-run switches stay."""
    leaked = [n for n in os.environ if n.startswith("DIGEST_") and n not in TEST_RUN_VARIABLES]
    assert leaked == []


def test_errors_give_the_line_of_the_key(tmp_path: Path) -> None:
    """Each bad value is reported at its line in digest.toml, without pydantic's prefix."""
    (tmp_path / "digest.toml").write_text(
        "# the desk's settings\n"
        'editions_dir = "issues"\n'
        "\n"
        "[publication]\n"
        'name = "Harbour Post"\n'
        'site_url = "ftp://harbour.example"   # line 6\n'
        "\n"
        "[schedule]\n"
        "editors = [\n"
        '  "desk@harbour.example",\n'
        '  "not an address",\n'
        "]\n"
        'policy = "sometimes"\n'
    )
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert lines[0] == "invalid settings (digest.toml and DIGEST_* environment):"
    assert (
        "  digest.toml:6: publication.site_url: must be an absolute http:// or https:// URL"
        in lines
    )
    assert "  digest.toml:13: schedule.policy: Input should be 'auto', 'approval' or 'off'" in lines
    assert any(
        line.startswith("  digest.toml:9: schedule.editors.1: value is not a valid email address")
        for line in lines
    )
    assert "Value error" not in str(caught.value)


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        (
            '[publication]\nname = "P"\ncontact_emial = "a@b.org"\n',
            "digest.toml:3: publication.contact_emial: unknown setting; "
            "did you mean 'contact_email'?",
        ),
        ('[publicaton]\nname = "P"\n', "digest.toml:1: publicaton: unknown setting; "),
        ("[render]\nmax_html = 1\n", "did you mean 'max_html_bytes'?"),
        (
            "database = 1\n",
            "digest.toml:1: database: unknown setting; did you mean 'database_url'?",
        ),
        ("[web]\nzzz = 1\n", "digest.toml:2: web.zzz: unknown setting (check the spelling)"),
    ],
)
def test_a_misspelt_key_gets_a_guess(tmp_path: Path, toml: str, expected: str) -> None:
    """An unknown key is answered with the nearest valid key of its table, when one is close."""
    (tmp_path / "digest.toml").write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert expected in str(caught.value)


def test_errors_name_the_environment_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bad value from DIGEST_* is reported under the variable's name, not the file's line."""
    (tmp_path / "digest.toml").write_text(
        '[web]\npublic_url = "https://list.example"\n[publication]\ncontact_email = "a@b.org"\n'
    )
    monkeypatch.setenv("DIGEST_WEB__PUBLIC_URL", "ftp://list.example")
    monkeypatch.setenv("DIGEST_PUBLICATION__CONTACT_EMAIL", "desk at example")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    lines = str(caught.value).splitlines()
    assert (
        "  DIGEST_WEB__PUBLIC_URL: web.public_url: must be an absolute http:// or https:// URL"
        in lines
    )
    assert any(
        line.startswith(
            "  DIGEST_PUBLICATION__CONTACT_EMAIL: publication.contact_email: value is not a valid"
        )
        for line in lines
    )
    assert "ftp://list.example" not in str(caught.value)  # a value may be a password


def test_key_line_follows_tables_dotted_keys_and_strings() -> None:
    """key_line finds a key under [tables], as a dotted key, in an inline table, and never
    inside a multi-line string."""
    text = (
        'note = """\n'  # 1
        "[publication]\n"  # 2: inside the string
        'name = "not a key"\n'  # 3: inside the string
        '"""\n'  # 4
        'render.templates_dir = "mine"\n'  # 5
        "web = { port = 0 }\n"  # 6
        "[ 'publication' ]\n"  # 7
        'name = "Post"   # the name\n'  # 8
        "[schedule]\n"  # 9
        '"policy" = "x"\n'  # 10
    )
    assert key_line(text, ["publication", "name"]) == 8
    assert tomllib.loads(text)["publication"]["name"] == "Post"
    assert key_line(text, ["render", "templates_dir"]) == 5
    assert key_line(text, ["web", "port"]) == 6
    assert key_line(text, ["schedule"]) == 9
    assert key_line(text, ["schedule", "policy"]) == 10
    assert key_line(text, ["schedule", "timezone"]) is None
