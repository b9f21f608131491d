"""Drawn charts, kept: building a Plotly Express figure costs tens of milliseconds (it validates every property
as it goes), and the analytics page draws a dozen on every run, usually from exactly the data of the run
before. A figure is kept under a key that holds everything it is drawn from (the chart, its labels and its
data), so it is drawn again only when any of that changes -- never stale -- and shared by every session.
Bounded, least recently used first out.

What is kept is the figure's dict inside a ``KeptFigure``. ``st.plotly_chart`` turns a plain dict back into a
``go.Figure`` on every call to validate it (``plotly.tools.return_figure_from_figure_or_data``: about as slow
as drawing it), but takes a Figure as validated already and sends its ``to_dict()``; a KeptFigure answers that
with the dict it was drawn into. That dict is kept as parsed JSON (dates as ISO strings, no numpy or pandas
values), so plotly's pass that makes a dict JSON-ready, run again on every call, has nothing left to convert:
about 20x less work than on the dict a figure draws into, for the same JSON.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

import plotly.graph_objects as go
import plotly.io

MAX_FIGURES = 64  # a dashboard has a dozen charts; a few periods and granularities stay warm


class KeptFigure(go.Figure):
    """A drawn, validated figure frozen as its dict. Read it; never change it (it is shared)."""

    def __init__(self, drawn: dict[str, Any]) -> None:
        super().__init__()
        self._kept = drawn

    def to_dict(self) -> dict[str, Any]:
        return self._kept


_figures: OrderedDict[Hashable, KeptFigure] = OrderedDict()
_lock = threading.Lock()


def kept_figure(key: Hashable, draw: Callable[[], go.Figure]) -> KeptFigure:
    """The figure ``draw()`` makes, drawn once per ``key`` and kept. ``key`` must determine the figure
    completely."""
    with _lock:
        kept = _figures.get(key)
        if kept is not None:
            _figures.move_to_end(key)
            return kept
    # outside the lock: two sessions drawing the same chart at once is harmless
    drawn = KeptFigure(json.loads(plotly.io.to_json(draw(), validate=False)))
    with _lock:
        _figures[key] = drawn
        _figures.move_to_end(key)
        while len(_figures) > MAX_FIGURES:
            _figures.popitem(last=False)
    return drawn


def clear() -> None:
    with _lock:
        _figures.clear()
