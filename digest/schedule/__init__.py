"""Scheduling: the one active APScheduler, the jobs it runs, and `digest run`."""
