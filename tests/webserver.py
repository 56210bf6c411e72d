"""Real HTTP servers on localhost: one serving pages and feeds the tests write,
and `digest serve` itself as a separate process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.mailserver import free_port


@dataclass
class Site:
    """Routes: path → (status, content type, body, seconds to wait first)."""

    base: str = ""
    routes: dict[str, tuple[int, str, bytes, float]] = field(default_factory=dict)
    released: threading.Event = field(default_factory=threading.Event)

    def page(self, path: str, body: str, status: int = 200, kind: str = "text/html") -> str:
        self.routes[path] = (status, kind, body.encode("utf-8"), 0.0)
        return self.base + path

    def slow(self, path: str, seconds: float = 600) -> str:
        """A page that answers only after ``seconds``, or when the test is over.

        The default outlasts any test, so a client's timeout is certain to come first
        (no race between the client's clock and the server's).
        """
        self.routes[path] = (200, "text/html", b"<title>late</title>", seconds)
        return self.base + path


@pytest.fixture
def site() -> Iterator[Site]:
    served = Site()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, kind, body, wait = served.routes.get(
                self.path, (404, "text/plain", b"not here", 0.0)
            )
            if wait:
                served.released.wait(wait)
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield served
    finally:
        served.released.set()  # let the slow pages' handlers finish
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Served:
    """A running `digest serve`: its base URL, its working folder and its process."""

    base: str
    folder: Path
    process: subprocess.Popen[bytes]


@pytest.fixture
def digest_serve(clean_env: Path) -> Iterator[Served]:
    """`digest serve` on a free port, with the default outbox and SQLite in a temp folder."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "DIGEST_WEB__PUBLIC_URL": base}
    process = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from digest.cli.app import main; main()",
            "serve",
            "--port",
            str(port),
        ],
        cwd=clean_env,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        # Until it answers: a loaded machine can take many seconds to import and start.
        # The bound only turns a hang into a failure.
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                if process.poll() is not None:
                    output = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"digest serve exited: {output}") from None
                if time.monotonic() > deadline:
                    raise AssertionError("digest serve did not start") from None
                time.sleep(0.1)
        yield Served(base, clean_env, process)
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:  # a client still connected holds a graceful stop
            process.kill()
            process.wait()
