"""The secret that signs confirm and unsubscribe links, and the file that keeps it.

The secret is ``secret_key`` when set (set it, identically, on every machine that
serves links). Otherwise one is generated on first use and kept in
``secret_key_file`` (mode 0600), so links keep working across restarts of a
single-machine install.

The file is created atomically: the secret is written to a temporary file in the
same folder and then hard-linked into place, which fails if the file exists. So
no process ever reads it half-written, and when several processes start at once
(the web server, a send, the scheduler) they all end up with the one secret that
was linked first; a secret that changed under them would break every link sent.
"""

from __future__ import annotations

import errno
import os
import secrets
import tempfile
from pathlib import Path

from digest.errors import ConfigError
from digest.settings import Settings

MIN_LENGTH = 16

# link() is refused with these on file systems without hard links (some network
# and FUSE mounts); a rename, atomic too, is the fallback there.
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def signing_secret(settings: Settings) -> str:
    """``secret_key`` if set, else the one kept in ``secret_key_file`` (made if missing)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    return secret_from_file(settings.secret_key_file)


def secret_from_file(path: Path) -> str:
    """The secret in ``path``; a new one, created atomically, if there is none yet."""
    secret = _read(path)
    return secret if secret is not None else _create(path)


def _read(path: Path) -> str | None:
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read the secret key file {path}: {exc.strerror}") from exc
    if len(secret) < MIN_LENGTH:
        raise ConfigError(
            f"the secret key in {path} is shorter than {MIN_LENGTH} characters: delete the "
            "file to have a new one made (links already sent stop working), or set secret_key"
        )
    return secret


def _create(path: Path) -> str:
    secret = secrets.token_urlsafe(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # mkstemp makes the file with mode 0600; the link below keeps it.
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".new")
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key file {path}: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secret + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        _publish(Path(temporary), path)
    except OSError as exc:
        raise ConfigError(f"cannot create the secret key file {path}: {exc.strerror}") from exc
    finally:
        Path(temporary).unlink(missing_ok=True)
    # Whatever is in place now: ours, or the one another process linked first.
    return _read(path) or secret


def _publish(temporary: Path, path: Path) -> None:
    """Put the complete file at ``path`` unless one is there already (then keep that one)."""
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: theirs is the secret
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise
        if not path.exists():  # no hard links here: rename, which could replace a racer's
            os.replace(temporary, path)
