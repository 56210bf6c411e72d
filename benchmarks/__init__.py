"""Benchmarks, each a script: ``python benchmarks/NAME.py --help``. A package only so
that type checkers tell benchmarks/subscribers.py from the subscribers package."""
