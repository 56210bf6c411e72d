"""A per-client sliding-window limit, kept in memory (one process).

A client is its IPv4 address, or its IPv6 /64: one household or server gets a
whole /64, so keying on the full IPv6 address would let anyone rotate around the
limit. Each request costs O(1): keys are kept in the order of their latest event,
so those idle for a whole window are dropped from the front, and at most
``max_keys`` are kept (the oldest go first), so memory stays bounded under a
flood from many networks.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

#: Keys kept at most; each holds up to ``limit`` timestamps.
MAX_KEYS = 100_000


def client_key(address: str) -> str:
    """The part of a client address the limit counts: IPv4 whole, IPv6 by /64."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return address  # not an address (a test client, a Unix socket): as it is
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds for each client (see :func:`client_key`)."""

    def __init__(
        self,
        limit: int,
        window: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = MAX_KEYS,
    ) -> None:
        self.limit = limit
        self.window = window
        self.max_keys = max_keys
        self._clock = clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()  # oldest latest-event first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many clients are remembered."""
        return len(self._events)

    def allow(self, address: str) -> bool:
        """Record an event for this client if it is within the limit; False if over it."""
        key = client_key(address)
        now = self._clock()
        with self._lock:
            self._forget_idle(now)
            events = self._events.get(key)
            if events is None:
                events = deque()
            while events and now - events[0] >= self.window:
                events.popleft()
            if len(events) >= self.limit:
                return False  # stays where it is: its latest event did not change
            events.append(now)
            self._events[key] = events
            self._events.move_to_end(key)
            while len(self._events) > self.max_keys:
                self._events.popitem(last=False)
            return True

    def _forget_idle(self, now: float) -> None:
        """Drop clients whose latest event is a window old; they stop at the first live one."""
        while self._events:
            events = next(iter(self._events.values()))
            if events and now - events[-1] < self.window:
                return
            self._events.popitem(last=False)
