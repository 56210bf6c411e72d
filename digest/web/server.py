"""Running the web app under uvicorn (``digest serve``), its access log without tokens."""

from __future__ import annotations

import errno
import socket
import threading

import uvicorn

from digest.database import open_database
from digest.errors import ConfigError
from digest.settings import Settings
from digest.web.accesslog import log_config
from digest.web.public import create_app
from subscribers.db import Database


def _check_free(host: str, port: int) -> None:
    """Fail with a clear message (not uvicorn's log line) when the port is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"{host}:{port} is already in use; pick another with --port"
                ) from exc
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from exc


def _server(
    settings: Settings, db: Database, host: str, port: int, log_level: str
) -> uvicorn.Server:
    _check_free(host, port)
    config = uvicorn.Config(
        create_app(settings, db),
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.web.forwarded_allow_ips,
        server_header=False,
        log_level=log_level,
        log_config=log_config(),  # uvicorn's own, with the tokens cut from the access log
    )
    return uvicorn.Server(config)


def serve(settings: Settings, host: str, port: int) -> None:
    """Serve the public pages until interrupted."""
    db = open_database(settings.database_url)
    try:
        _server(settings, db, host, port, "info").run()
    finally:
        db.close()


class BackgroundServer:
    """uvicorn serving the web app from a thread of a process that does other work."""

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, db: Database) -> None:
        self.server = server
        self.thread = thread
        self.db = db

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.db.close()


def background_server(settings: Settings, host: str, port: int) -> BackgroundServer:
    db = open_database(settings.database_url)
    try:
        server = _server(settings, db, host, port, "warning")
    except BaseException:
        db.close()
        raise
    thread = threading.Thread(target=server.run, name="web", daemon=True)
    thread.start()
    return BackgroundServer(server, thread, db)
