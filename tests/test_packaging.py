"""`pip install .` (not only editable) must carry the templates and the example edition."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import venv
import zipfile
from pathlib import Path

import pytest

from tests.helpers import ROOT

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    (built,) = out.glob("digest_publisher-*.whl")
    return built


def test_wheel_ships_templates_and_example(wheel: Path) -> None:
    """The wheel holds the email templates inside the package and the example edition."""
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "digest/_templates/email/edition.mjml.j2" in names
    assert "digest/_templates/email/edition.txt.j2" in names
    assert "digest/edition/examples/2017-11-02.md" in names
    assert "subscribers/__init__.py" in names
    assert "digest/migrations/env.py" in names
    assert "digest/migrations/versions/0001_initial.py" in names


def test_fresh_virtualenv_outside_checkout_runs_demo(wheel: Path, tmp_path: Path) -> None:
    """Installed into a new virtualenv, `digest demo` works from an unrelated folder."""
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    # Dependencies come from this environment (no network needed); the project itself
    # only from the wheel, so the checkout's templates/ folder cannot be used by accident.
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = sysconfig.get_paths()["purelib"]
    Path(site, "outer-deps.pth").write_text(deps + "\n")
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
        capture_output=True,
        text=True,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    # only the wheel: a PYTHONPATH pointing at a checkout must not leak in
    clean = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    done = subprocess.run(
        [str(env_dir / "bin" / "digest"), "demo"],
        cwd=work,
        capture_output=True,
        text=True,
        env=clean,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    html = (work / "digest-demo" / "edition.html").read_text()
    assert "Executive Summary for November 2nd" in html
    where = subprocess.run(
        [
            str(python),
            "-c",
            "import digest.render.templating as t; print(t.default_templates_dir())",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        check=True,
        env=clean,
    ).stdout.strip()
    assert where.startswith(str(env_dir)), f"templates came from {where}, not the installed package"
