"""The ``digest`` command: thin commands over the pipeline's functions."""

from __future__ import annotations


def main() -> None:
    """Entry point of the console script; imports the commands only when run."""
    from digest.cli.app import main as run

    run()
