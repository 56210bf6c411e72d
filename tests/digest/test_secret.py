"""The secret-key file: made once, atomically, private, and the same for every process."""

from __future__ import annotations

import multiprocessing
import os
import sys
from multiprocessing.synchronize import Barrier, Event
from pathlib import Path

import pytest
from pydantic import SecretStr

from digest.errors import ConfigError
from digest.send.secret import secret_from_file, signing_secret
from digest.settings import Settings

RACERS = 8


def _race(path: str, start: Barrier | None, results: multiprocessing.Queue[str]) -> None:
    """One process: wait for the others (if any), then read or create the secret."""
    if start is not None:
        start.wait()
    try:
        results.put(secret_from_file(Path(path)))
    except Exception as exc:  # reported, so the test fails on it rather than waiting
        results.put(f"error: {exc!r}")


def _creator_paused_mid_write(
    path: str, paused: Event, go: Event, results: multiprocessing.Queue[str]
) -> None:
    """Creates the secret, stopping right after a file is made and before anything is
    written to it (the first open of a file descriptor): where a non-atomic creation
    shows others an empty file."""

    def hold(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and isinstance(args[0], int) and not paused.is_set():
            paused.set()
            go.wait(120)

    sys.addaudithook(hold)  # this child process only
    _race(path, None, results)


def _reader_meanwhile(
    path: str, paused: Event, go: Event, results: multiprocessing.Queue[str]
) -> None:
    """Reads (or creates) the secret while the creator is stopped, then lets it go on."""
    paused.wait(120)
    try:
        _race(path, None, results)
    finally:
        go.set()


def test_a_file_being_written_is_never_seen_half_done(tmp_path: Path) -> None:
    """A process that reads while another is between creating the file and writing
    the secret into it sees no file (and makes one), never an empty one; both then
    hold the same secret."""
    context = multiprocessing.get_context("fork")
    path = str(tmp_path / "digest.secret")
    paused, go = context.Event(), context.Event()
    results: multiprocessing.Queue[str] = context.Queue()
    processes = [
        context.Process(target=target, args=(path, paused, go, results))
        for target in (_creator_paused_mid_write, _reader_meanwhile)
    ]
    for process in processes:
        process.start()
    secrets = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join()
    assert paused.is_set()  # the creator really stopped mid-way
    assert secrets[0] == secrets[1] and len(secrets[0]) >= 16, secrets
    assert Path(path).read_text(encoding="utf-8") == secrets[0] + "\n"


def test_processes_racing_to_create_the_file_all_get_the_same_secret(tmp_path: Path) -> None:
    """Several processes creating the file at the same moment all read one non-empty
    secret, the one in the file, and leave no temporary file behind."""
    context = multiprocessing.get_context("fork")
    for round_number in range(5):
        path = tmp_path / f"round-{round_number}" / "digest.secret"
        start = context.Barrier(RACERS)
        results: multiprocessing.Queue[str] = context.Queue()
        racers = [
            context.Process(target=_race, args=(str(path), start, results)) for _ in range(RACERS)
        ]
        for racer in racers:
            racer.start()
        secrets = [results.get(timeout=120) for _ in racers]
        for racer in racers:
            racer.join()
            assert racer.exitcode == 0
        assert len(set(secrets)) == 1 and len(secrets[0]) >= 16
        assert path.read_text(encoding="utf-8") == secrets[0] + "\n"
        assert path.stat().st_mode & 0o777 == 0o600
        assert [p.name for p in path.parent.iterdir()] == ["digest.secret"]


def test_an_existing_file_is_kept_and_read(tmp_path: Path) -> None:
    """A secret already in the file is returned as it is, never replaced."""
    path = tmp_path / "digest.secret"
    path.write_text("an-existing-secret-0123456789\n", encoding="utf-8")
    assert secret_from_file(path) == "an-existing-secret-0123456789"
    assert signing_secret(Settings(secret_key_file=path)) == "an-existing-secret-0123456789"
    assert secret_from_file(path) == "an-existing-secret-0123456789"


def test_secret_key_wins_over_the_file(tmp_path: Path) -> None:
    """With ``secret_key`` set no file is made: every machine signs with the same key."""
    path = tmp_path / "digest.secret"
    settings = Settings(secret_key=SecretStr("set-on-every-machine-0123"), secret_key_file=path)
    assert signing_secret(settings) == "set-on-every-machine-0123"
    assert not path.exists()


def test_a_short_or_unreadable_file_is_a_clear_error(tmp_path: Path) -> None:
    """A secret too short to sign with, or a folder that cannot hold the file, is a
    ConfigError naming the file, not a traceback."""
    short = tmp_path / "short.secret"
    short.write_text("tiny\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"short\.secret is shorter than 16 characters"):
        secret_from_file(short)
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"cannot read the secret key file .*a-file"):
        secret_from_file(not_a_folder / "digest.secret")
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ConfigError, match="cannot create the secret key file"):
            secret_from_file(locked / "digest.secret")
