"""Shared pieces of the image grids (My Creations, Community, Moderation): keyset pager, image cells, badges.

User text (titles, prompts, names) only ever goes through ``plain()`` into captions or through ``st.text``.
"""

from __future__ import annotations

import base64
import functools
import html
import io
import os
import stat
from collections.abc import Callable, Hashable

import streamlit as st

from studio_core.services.community import RemixOrigin
from studio_core.services.paging import BadCursor
from studio_core.ui.widgets import plain

CARD_WIDTH = 224  # px: three or four cards a row on a laptop (1400-1600 px), more on a wide screen, one on a phone
STATUS_COLORS = {"visible": "green", "hidden": "orange", "removed": "red", "unpublished": "gray"}


def counted(n: int, noun: str) -> str:
    """"1 like", "2 likes", "1 remix", "0 remixes"."""
    return f"{n:,} {noun}" + ("" if n == 1 else "es" if noun.endswith(("s", "x")) else "s")


def shorten(text: str, limit: int = 90) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


# -- keyset paging ---------------------------------------------------------------------------------------------
def page_cursor(key: str, signature: Hashable) -> str | None:
    """The cursor of the page to show. The stack of cursors lives in session state and starts over whenever
    ``signature`` (the filters and sort) changes, so a cursor is never used with another ordering."""
    ss = st.session_state
    if ss.get(f"{key}_signature") != signature:
        ss[f"{key}_signature"] = signature
        ss[f"{key}_cursors"] = [None]
    return ss[f"{key}_cursors"][-1]


def restart_paging(key: str) -> None:
    st.session_state[f"{key}_cursors"] = [None]


def load_page(key: str, fetch: Callable[[str | None], object], signature: Hashable):
    """fetch(cursor) for the current page; a stale cursor (BadCursor) quietly restarts from page 1."""
    try:
        return fetch(page_cursor(key, signature))
    except BadCursor:
        restart_paging(key)
        return fetch(None)


def pager(key: str, next_cursor: str | None) -> None:
    """Previous / Page n / Next under a grid (hidden when everything fits on one page)."""
    cursors: list = st.session_state[f"{key}_cursors"]
    if len(cursors) == 1 and next_cursor is None:
        return
    with st.container(horizontal=True, horizontal_alignment="distribute", vertical_alignment="center"):
        st.button("Previous", key=f"{key}_previous", icon=":material/chevron_left:", disabled=len(cursors) == 1,
                  on_click=cursors.pop)
        st.caption(f"Page {len(cursors)}", width="content")
        st.button("Next", key=f"{key}_next", icon=":material/chevron_right:", disabled=next_cursor is None,
                  on_click=cursors.append, args=(next_cursor,))


# -- cells -----------------------------------------------------------------------------------------------------
def grid(items: list, render: Callable[[object], None]) -> None:
    """Items as bordered cards of one width in one row that wraps, as many a row as the screen has room for.
    One layout block for the whole grid: columns would add a block per row and one per column, every run."""
    with st.container(horizontal=True, gap="medium"):
        for item in items:
            with st.container(border=True, width=CARD_WIDTH):
                render(item)


# Streamlit passes JPEG, PNG and GIF bytes through, but decodes anything else (the local store's WebP
# thumbnails, for one) and encodes it as JPEG again on every call: milliseconds per picture, every run, for
# every session. Even bytes it passes through are opened with PIL and hashed into the media store on every run.
# So a local file is prepared once and kept here (bounded, shared by every session, keyed by path, size and
# modification time so a replaced file is prepared again): a small picture (a thumbnail) becomes a data: URL,
# which st.image hands to the browser as it is (about half the cost of bytes, and the browser needs no second
# request); a larger one in another format is converted once.
_PASSED_THROUGH = ("JPEG", "PNG", "GIF")
_BROWSER_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "GIF": "image/gif", "WEBP": "image/webp"}
DATA_URL_MAX_BYTES = 48 * 1024  # thumbnails are a few KB; a full image goes through Streamlit's media files


def image_source(url: str) -> tuple[str | bytes, str]:
    """What to hand ``st.image`` for an ImageStore URL, and its ``output_format``: a remote URL as it is (the
    browser fetches it), a small local file as a data: URL, a larger one in a format Streamlit serves as it is
    by its path, or that file converted once."""
    try:
        info = os.stat(url)
    except (OSError, ValueError):  # not a local path: an http(s) URL
        return url, "auto"
    if not stat.S_ISREG(info.st_mode):
        return url, "auto"
    return _local_source(url, info.st_size, info.st_mtime_ns)


@functools.lru_cache(maxsize=256)
def _local_source(path: str, size: int, _mtime_ns: int) -> tuple[str | bytes, str]:
    from PIL import Image

    try:
        data = None
        if size <= DATA_URL_MAX_BYTES:
            with open(path, "rb") as fh:
                data = fh.read()
        with Image.open(io.BytesIO(data) if data is not None else path) as img:
            if data is not None and img.format in _BROWSER_FORMATS:
                return f"data:{_BROWSER_FORMATS[img.format]};base64,{base64.b64encode(data).decode()}", "auto"
            if img.format in _PASSED_THROUGH:
                return path, img.format  # named, so a PNG without alpha is not turned into a JPEG either
            out = io.BytesIO()
            if img.mode in ("RGBA", "LA", "P"):  # what Streamlit itself would pick: PNG keeps transparency
                img.save(out, format="PNG")
                return out.getvalue(), "PNG"
            img.convert("RGB").save(out, format="JPEG", quality=90)
            return out.getvalue(), "JPEG"
    except (OSError, ValueError):  # unreadable: let st.image report it as it always did
        return path, "auto"


def picture(url: str | None, alt: str, *, missing: str = "No picture") -> None:
    """A picture at the width of its column; without one, a square tile saying why (``missing``), the size of a
    thumbnail, so a row of pictures and their buttons stays lined up."""
    if url:
        source, output_format = image_source(url)
        st.image(source, width="stretch", alt=alt, output_format=output_format)
    else:
        st.image(missing_tile(missing), width="stretch", alt=missing)


TILE_LINE_CHARS = 14  # at 28 of the tile's 240 units, legible on a 100 px thumbnail


@functools.lru_cache(maxsize=32)
def missing_tile(label: str) -> str:
    """A square SVG with ``label`` (one of the app's own status words, never user text) in the middle, a line of
    up to 14 characters at a time. Greys that read on a light and on a dark theme alike."""
    lines: list[str] = []
    for word in label.split():
        if lines and len(lines[-1]) + 1 + len(word) <= TILE_LINE_CHARS:
            lines[-1] += " " + word
        else:
            lines.append(word)
    first = 120 - 17 * (len(lines) - 1)
    text = "".join(f'<tspan x="120" y="{first + 34 * i}">{html.escape(line)}</tspan>' for i, line in enumerate(lines))
    return ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 240 240" width="240" height="240">'
            '<rect width="240" height="240" rx="10" fill="rgba(128,132,149,0.14)"/>'
            '<text font-family="sans-serif" font-size="28" fill="rgb(128,132,149)" text-anchor="middle" '
            f'dominant-baseline="middle">{text}</text></svg>')


def status_badge(status: str, label: str) -> None:
    st.badge(label, color=STATUS_COLORS.get(status, "gray"))


def title_line(title: str) -> None:
    st.markdown(f"**{plain(shorten(title, 60))}**")


def meta_text(*parts: str | None) -> str:
    """"12 Mar 2026 · Standard · not charged": the parts there are, each escaped for Markdown."""
    return " · ".join(plain(p) for p in parts if p)


def meta_line(*parts: str | None) -> None:
    st.caption(meta_text(*parts))


def card_heading(title: str, *meta: str | None, bold: bool = True) -> None:
    """A grid card's title (or, not bold, its prompt) and its meta line as one element, as a grid draws dozens
    every run: a title in bold over a small grey meta line, a prompt as a caption over it. Both escaped."""
    if bold:
        st.markdown(f"**{plain(shorten(title, 60))}**  \n:small[:gray[{meta_text(*meta)}]]")
    else:
        st.caption(plain(shorten(title, 80)) + "  \n" + meta_text(*meta))


CARD_LINK_CHARS = 22  # what a card's one-line link shows of its label before "…" (a pill cuts it off mid-letter)


def remix_link(origin: RemixOrigin | None, *, in_card: bool = False) -> None:
    """"Remixed from “Title” by Ada": a link to the source post when the viewer may open it, else plain text.
    In a card, "Remix of “Title…”" on one line, the whole label on hover."""
    if origin is None:
        return
    if origin.post_id is not None:
        label = shorten(f"Remix of “{origin.title}”", CARD_LINK_CHARS) if in_card else origin.label
        st.page_link("app_pages/community.py", label=plain(label), icon=":material/autorenew:",
                     query_params={"post": str(origin.post_id)}, help=plain(origin.label) if in_card else None)
    else:
        st.caption(plain(origin.label))
