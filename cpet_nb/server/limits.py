"""Per-user admission: a sliding-window rate limit on submissions, and a count of each user's
batches that are being started (so that two submissions at once cannot both pass the limit
on running batches)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class RateLimiter:
    """At most ``limit`` events per user in any ``window_s`` seconds.

    >>> rate = RateLimiter(2, 60.0)
    >>> rate.admit("ann") is None, rate.admit("ann") is None, rate.admit("bob") is None
    (True, True, True)
    >>> 0 < rate.admit("ann") <= 60
    True
    """

    def __init__(self, limit: int, window_s: float) -> None:
        self.limit = limit
        self.window_s = window_s
        self._events: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def admit(self, user: str) -> float | None:
        """Count one event for ``user``; None when admitted, else the seconds until the
        oldest event in the window leaves it (the refused event is not counted)."""
        now = time.monotonic()
        with self._lock:
            events = self._events[user]
            while events and events[0] <= now - self.window_s:
                events.popleft()
            if len(events) >= self.limit:
                return events[0] + self.window_s - now
            events.append(now)
            return None


class Starting:
    """Submissions in progress per user (between the running-batch check and the job's
    creation)."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    @contextmanager
    def reserve(self, user: str, running: Callable[[], int], limit: int) -> Iterator[bool]:
        """Yield whether ``user``, with ``running()`` batches running (read under the lock),
        may start one more under ``limit``; while the block runs, the start counts."""
        with self._lock:
            admitted = running() + self._counts[user] < limit
            if admitted:
                self._counts[user] += 1
        try:
            yield admitted
        finally:
            if admitted:
                with self._lock:
                    self._counts[user] -= 1
