"""Figures that take a noticeable moment to add up and may be shown a little old: kept per key for a number of
seconds (``analytics_cache_s``) and shared by every admin of an app process. The analytics dashboard keeps one
per date range, the catalog its usage figures. The caller checks the reader's role before asking."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Kept(Generic[K, V]):
    def __init__(self, keep_for_s: int, *, size: int = 8) -> None:
        self._keep_for = timedelta(seconds=keep_for_s)
        self._size = size
        self._items: OrderedDict[K, tuple[datetime, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K, now: datetime, add_up: Callable[[datetime], V], *, fresh: bool = False) -> V:
        """The value kept for ``key`` if it was added up less than the keeping time before ``now``; otherwise
        (or with ``fresh``) ``add_up(now)``, kept from then on (none is kept when the keeping time is 0)."""
        with self._lock:
            kept = self._items.get(key)
        if kept is not None and not fresh and timedelta(0) <= now - kept[0] < self._keep_for:
            return kept[1]
        value = add_up(now)
        if self._keep_for:
            with self._lock:
                self._items[key] = (now, value)
                self._items.move_to_end(key)
                while len(self._items) > self._size:
                    self._items.popitem(last=False)
        return value
