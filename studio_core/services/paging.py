"""Keyset pagination: a page of items plus an opaque cursor naming the last row's sort key.

The next page asks for rows strictly after that key, so the database walks its index from there: page 50
costs what page 1 costs (OFFSET would read and throw away the 980 rows before it). A cursor carries the name of
the ordering it belongs to and is refused for any other, so a changed sort or filter can never mix keys.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


class BadCursor(ValueError):
    """A cursor that this ordering did not make (stale, edited or from another list): start from the top."""


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None  # None: this is the last page

    @property
    def is_empty(self) -> bool:
        return not self.items


def encode_cursor(ordering: str, *values: int | datetime) -> str:
    plain = [v.isoformat() if isinstance(v, datetime) else int(v) for v in values]
    raw = json.dumps({"o": ordering, "v": plain}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, ordering: str, kinds: tuple[type, ...]) -> tuple | None:
    """The key values of ``cursor`` typed as ``kinds`` (int or datetime), or None for the first page."""
    if cursor is None:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        values = data["v"]
        if data["o"] != ordering or len(values) != len(kinds):
            raise BadCursor("This list changed; starting again from the top.")
        out = []
        for kind, value in zip(kinds, values, strict=True):
            if kind is datetime:
                parsed = datetime.fromisoformat(value)
                if parsed.tzinfo is None:
                    raise BadCursor("cursor time without a time zone")
                out.append(parsed)
            elif isinstance(value, int) and not isinstance(value, bool):
                out.append(value)
            else:
                raise BadCursor("cursor value of the wrong type")
        return tuple(out)
    except BadCursor:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise BadCursor("This list changed; starting again from the top.") from exc


def page_of(rows: list, limit: int, make_cursor) -> tuple[list, str | None]:
    """Rows fetched with ``limit + 1`` -> (the page, the cursor after its last row or None if nothing follows)."""
    if len(rows) > limit:
        rows = rows[:limit]
        return rows, make_cursor(rows[-1])
    return rows, None
