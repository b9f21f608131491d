"""Drawn charts, kept: building a Plotly Express figure costs tens of milliseconds (it validates every property
as it goes), and the analytics page draws a dozen on every run, usually from exactly the data of the run
before. A figure is kept as a plain dict under a key that holds everything it is drawn from (the chart, its
labels and its data), so it is drawn again only when any of that changes -- never stale -- and shared by every
session. Bounded, least recently used first out.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

MAX_FIGURES = 64  # a dashboard has a dozen charts; a few periods and granularities stay warm

_figures: OrderedDict[Hashable, dict[str, Any]] = OrderedDict()
_lock = threading.Lock()


def figure_dict(key: Hashable, draw: Callable[[], Any]) -> dict[str, Any]:
    """The figure ``draw()`` makes, as a dict (what ``st.plotly_chart`` sends), drawn once per ``key``.
    ``key`` must determine the figure completely. Callers must not change the dict they get."""
    with _lock:
        kept = _figures.get(key)
        if kept is not None:
            _figures.move_to_end(key)
            return kept
    drawn = draw().to_dict()  # outside the lock: two sessions drawing the same chart at once is harmless
    with _lock:
        _figures[key] = drawn
        _figures.move_to_end(key)
        while len(_figures) > MAX_FIGURES:
            _figures.popitem(last=False)
    return drawn


def clear() -> None:
    with _lock:
        _figures.clear()
