"""How a send is shared among sender processes: connections, and the rate limit in all."""

from __future__ import annotations

import pytest

from digest.send.workers import SPREAD_FROM, process_count, split
from digest.settings import DeliverySettings


@pytest.mark.parametrize(
    ("connections", "processes", "expected"),
    [(8, 2, [4, 4]), (5, 2, [3, 2]), (3, 3, [1, 1, 1]), (4, 1, [4])],
)
def test_connections_are_shared_evenly(
    connections: int, processes: int, expected: list[int]
) -> None:
    parts = split(DeliverySettings(connections=connections), processes)
    assert [part.connections for part in parts] == expected


def test_the_rate_limit_holds_for_the_send_in_all() -> None:
    """Ten a second over 5 connections in 2 processes: 6 and 4, not ten each."""
    parts = split(DeliverySettings(connections=5, rate_per_second=10), 2)
    assert [part.rate_per_second for part in parts] == [6, 4]
    assert split(DeliverySettings(rate_per_second=0), 2)[1].rate_per_second == 0


def test_how_many_processes() -> None:
    """By default one per core past SPREAD_FROM messages; never more than connections."""
    many, few = SPREAD_FROM + 1, SPREAD_FROM
    assert process_count(DeliverySettings(connections=8), few) == 1
    assert process_count(DeliverySettings(connections=1), many) == 1
    assert process_count(DeliverySettings(connections=8, processes=3), few) == 3
    assert process_count(DeliverySettings(connections=2, processes=3), few) == 2
    import os

    assert process_count(DeliverySettings(connections=64), many) == min(64, os.cpu_count() or 1)
