from __future__ import annotations

from pathlib import Path

import pytest

from digest.errors import ConfigError
from digest.settings import load_settings


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
